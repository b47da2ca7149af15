/** The words on a schedule row of the sidebar (pure: unit-tested in test/unit/webview-scheduleModel.test.ts). */
import { formatUsd } from '../components/format';
import type { ScheduleRowView } from '../protocol';

/** `Mon 30 Mar 03:00` in the viewer's zone, with the year when it is not this year's. */
export function localWhen(iso: string, now: Date): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const opts: Intl.DateTimeFormatOptions = { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (d.getSeconds() !== 0) opts.second = '2-digit';
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return d.toLocaleString('en-GB', opts).replace(/,/g, '');
}

/** A schedule's run row: when it started, `4 Dec 19:49`, in the viewer's zone. */
export function runWhen(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).replace(/,/g, '');
}

export interface ScheduleRowText {
  /** `next Mon 30 Mar 03:00`, `paused`, `no next time`. */
  next: string;
  /** `last: exit 0`, `last: skipped`, `not run yet`. */
  last: string;
  tone: 'ok' | 'error' | 'warning' | 'active' | 'none';
  totals: string;
  /** The whole row in one sentence, for screen readers and tooltips. */
  label: string;
}

export function scheduleRowText(s: ScheduleRowView, now: Date): ScheduleRowText {
  const next = s.paused ? 'paused' : s.next[0] ? `next ${localWhen(s.next[0], now)}` : 'no next time';
  let last = 'not run yet';
  let tone: ScheduleRowText['tone'] = 'none';
  if (s.last) {
    const r = s.last.result;
    if (r === 'exited') {
      last = `last: exit ${s.last.exitCode ?? '?'}`;
      tone = s.last.exitCode === 0 ? 'ok' : 'error';
    } else {
      last = `last: ${r}`;
      tone = r === 'running' || r === 'queued' ? 'active' : r === 'failed' || r === 'refused' ? 'error' : 'warning';
    }
  }
  const totals = `${s.runCount} run${s.runCount === 1 ? '' : 's'} · ${formatUsd(s.costUsd)}${s.skipped ? ` · ${s.skipped} skipped` : ''}`;
  const label = [`Schedule ${s.name}`, `"${s.cron}" ${s.timezone}`, next, last, s.last?.reason, totals].filter(Boolean).join(', ');
  return { next, last, tone, totals, label };
}
