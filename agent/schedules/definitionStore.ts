/**
 * Schedules in the agent's data folder (`DATA_DIR/schedules.json`), each with what it has done so far: the
 * last due time it dealt with (a restarted agent catches up from there), the runs it has going (followed
 * again after a restart), its latest firings and its totals (agent/store/jsonListFile.ts: written whole,
 * then renamed, as the endpoint definitions are).
 */
import path from 'node:path';
import { z } from 'zod';
import { RunSpec, ScheduleFiring, ScheduleSettings } from '../protocol';
import { JsonListFile } from '../store/jsonListFile';

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

/** The schedules kept in `DATA_DIR/schedules.json`. */
export class ScheduleStore extends JsonListFile<ScheduleDefinition> {
  constructor(dataDir: string) {
    super(path.join(dataDir, 'schedules.json'), 'schedules', ScheduleDefinition, 'schedules');
  }
}
