/**
 * Schedules in the agent's data folder (`DATA_DIR/schedules.json`), each with what it has done so far: the
 * last due time it dealt with (a restarted agent catches up from there), the runs it has going (followed
 * again after a restart), its latest firings and its totals. Written whole to a temporary file and renamed,
 * as the endpoint definitions are: a crash leaves the old file or the new one, never half of one.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { RunSpec, ScheduleFiring, ScheduleSettings } from '../protocol';

/** Latest firings kept per schedule. */
export const RECENT_FIRINGS = 20;

export const ScheduleDefinition = z.strictObject({
  tenant: z.string(), name: z.string(), spec: RunSpec, settings: ScheduleSettings, image: z.string(), createdAt: z.string(),
  paused: z.boolean().default(false),
  lastDue: z.string().describe('ISO time of the last due time dealt with (fired, skipped or queued); catch-up starts after it.'),
  active: z.array(z.string()).default([]).describe('Run ids of its runs not yet ended when this was written.'),
  queued: ScheduleFiring.optional().describe('A firing waiting for the running one to end (`overlap: queue`).'),
  recent: z.array(ScheduleFiring).default([]).describe('Newest first.'),
  runs: z.number().int().nonnegative().default(0),
  skipped: z.number().int().nonnegative().default(0),
  cost: z.number().nonnegative().default(0),
});
export type ScheduleDefinition = z.infer<typeof ScheduleDefinition>;

const FileShape = z.strictObject({ version: z.literal(1), schedules: z.array(ScheduleDefinition) });

export class ScheduleStore {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'schedules.json');
  }

  /** The schedules kept; an unreadable file is reported and set aside, not fatal: the agent still serves runs. */
  load(onProblem: (message: string) => void): ScheduleDefinition[] {
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
      onProblem(`${this.file} is not a schedules file; moved to ${aside}`);
      return [];
    }
    return parsed.data.schedules;
  }

  save(defs: readonly ScheduleDefinition[]): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ version: 1, schedules: defs }, null, 1) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
