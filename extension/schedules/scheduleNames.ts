/** Schedule names as the agent takes them (agent/protocol ScheduleSummary.name), and the default one offered. */
export const SCHEDULE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A schedule name from a folder's name: lower-case, other characters as `-`, `job` when nothing is left. */
export function defaultScheduleName(folder: string): string {
  const n = folder.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return SCHEDULE_NAME.test(n) ? n : 'job';
}
