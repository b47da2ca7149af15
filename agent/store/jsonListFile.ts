/**
 * A list of records kept in one JSON file of the agent's data folder (`{"version": 1, KEY: [...]}`), checked
 * with its schema when read. Written whole to a temporary file and renamed: a crash leaves the old file or
 * the new one, never half of one. An unreadable file is reported and set aside, not fatal: the agent still
 * serves runs. Endpoint definitions and schedules are kept this way.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

export class JsonListFile<T> {
  private readonly shape: z.ZodType<Record<string, unknown>>;

  /** `what` names the records in messages (`definitions`, `schedules`). */
  constructor(readonly file: string, private readonly key: string, item: z.ZodType<T>, private readonly what: string) {
    this.shape = z.strictObject({ version: z.literal(1), [key]: z.array(item) }) as unknown as z.ZodType<Record<string, unknown>>;
  }

  load(onProblem: (message: string) => void): T[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onProblem(`cannot read ${this.file}: ${(err as Error).message}`);
      return [];
    }
    const parsed = this.shape.safeParse((() => { try { return JSON.parse(text); } catch { return undefined; } })());
    if (!parsed.success) {
      const aside = `${this.file}.unreadable-${Date.now()}`;
      try { renameSync(this.file, aside); } catch { /* left where it is */ }
      onProblem(`${this.file} is not a ${this.what} file; moved to ${aside}`);
      return [];
    }
    return parsed.data[this.key] as T[];
  }

  save(items: readonly T[]): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ version: 1, [this.key]: items }, null, 1) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
