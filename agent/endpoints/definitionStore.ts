/**
 * Endpoint definitions in the agent's data folder (`DATA_DIR/endpoints.json`), with the run ids of the
 * instances each has running, so that an agent killed and started again serves the same endpoints and
 * adopts the instances it left. Written whole to a temporary file and renamed: a crash leaves the old
 * file or the new one, never half of one.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EndpointSettings, RunSpec } from '../protocol';
import { Spent } from './endpointCost';

/** One endpoint as kept on disk: the run spec its instances are made from, and how it scales. */
export const EndpointDefinition = z.strictObject({
  tenant: z.string(), name: z.string(), spec: RunSpec, settings: EndpointSettings, image: z.string(), createdAt: z.string(),
  instances: z.array(z.string()).default([]).describe('Run ids of the instances running when this was written.'),
  spent: Spent.optional().describe('What its instances have cost, as of this writing.'),
});
export type EndpointDefinition = z.infer<typeof EndpointDefinition>;

const FileShape = z.strictObject({ version: z.literal(1), endpoints: z.array(EndpointDefinition) });

export class DefinitionStore {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'endpoints.json');
  }

  /** The definitions kept; an unreadable file is reported and set aside, not fatal: the agent still serves runs. */
  load(onProblem: (message: string) => void): EndpointDefinition[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onProblem(`cannot read ${this.file}: ${(err as Error).message}`);
      return [];
    }
    const parsed = FileShape.safeParse((() => { try { return JSON.parse(text); } catch { return undefined; } })());
    if (!parsed.success) {
      const aside = `${this.file}.unreadable-${Date.now()}`;
      try { renameSync(this.file, aside); } catch { /* left where it is */ }
      onProblem(`${this.file} is not a definitions file; moved to ${aside}`);
      return [];
    }
    return parsed.data.endpoints;
  }

  save(defs: readonly EndpointDefinition[]): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ version: 1, endpoints: defs }, null, 1) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
