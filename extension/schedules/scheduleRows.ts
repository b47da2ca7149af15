/** The sidebar's schedule rows from the agent's `schedule.list` and `run.list` replies (pure: no VS Code). */
import type { ScheduleSummary } from '../../agent/protocol';
import type { RunRowView, ScheduleRowView } from '../../webview/protocol';

/** The name an agent gives the runs of schedule `name` (agent/schedules/scheduler.ts). */
export const scheduleRunName = (name: string) => `schedule ${name}`;

/** A schedule and its past runs (any order in; newest first out). */
export function scheduleRow(s: ScheduleSummary, runs: RunRowView[]): ScheduleRowView {
  const mine = runs.filter((r) => r.name === scheduleRunName(s.name))
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const l = s.last;
  return {
    name: s.name, cron: s.settings.cron, timezone: s.timezone, paused: s.paused, next: s.next,
    ...(l ? { last: { time: l.time, result: l.result, exitCode: l.exitCode, runId: l.runId, reason: l.reason } } : {}),
    runCount: s.runs, skipped: s.skipped, costUsd: s.cost, runs: mine,
  };
}

/** `2025-03-30 03:00:00 CEST` in this machine's zone (the way `bytenite schedules` prints local times). */
export function localTimeText(iso: string): string {
  return new Intl.DateTimeFormat('sv-SE', {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
  }).format(new Date(iso));
}
