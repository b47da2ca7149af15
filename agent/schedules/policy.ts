/**
 * The rules of a schedule, kept pure (no clock, no timers, no runs) so that a unit test can state them:
 * which times were missed, what catch-up does with them, and what a time that finds the last run still
 * going becomes. Times are read by croner (cron with an optional seconds field, IANA zones, DST).
 */
import { Cron } from 'croner';
import type { ScheduleSettings } from '../protocol';

/** Most missed times looked at after a downtime: a `* * * * * *` schedule down a week would be 600k. */
export const MAX_MISSED = 100;

/** A paused Cron object: croner only computes here, the scheduler keeps its own timers. */
export function cronOf(s: Pick<ScheduleSettings, 'cron' | 'timezone'>): Cron {
  return new Cron(s.cron, { timezone: s.timezone, paused: true });
}

/** Why `cron`/`timezone` cannot be used, in words for the user; undefined when they can. */
export function checkCron(s: Pick<ScheduleSettings, 'cron' | 'timezone'>): string | undefined {
  try {
    const c = cronOf(s);
    if (!c.nextRun()) return `--cron "${s.cron}" never fires again`;
    return undefined;
  } catch (err) {
    const m = (err as Error).message;
    return /timezone/i.test(m) ? `--timezone ${s.timezone}: not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)` : `--cron "${s.cron}": ${m}`;
  }
}

/** The next `n` times after `from`, in the schedule's zone. */
export function nextTimes(s: Pick<ScheduleSettings, 'cron' | 'timezone'>, n: number, from: Date): Date[] {
  return cronOf(s).nextRuns(n, from);
}

/**
 * The times due after `last` (exclusive) up to `now` (inclusive), oldest first, at most `limit` (the latest
 * ones are kept: they matter most to a catch-up). `truncated` says how many older ones were left out.
 */
export function missedTimes(s: Pick<ScheduleSettings, 'cron' | 'timezone'>, last: Date, now: Date, limit = MAX_MISSED): { times: Date[]; truncated: number } {
  const cron = cronOf(s);
  const times: Date[] = [];
  let truncated = 0;
  let at: Date | null = last;
  for (;;) {
    at = cron.nextRun(at);
    if (!at || at.getTime() > now.getTime()) break;
    times.push(at);
    if (times.length > limit) {
      times.shift();
      truncated++;
    }
  }
  return { times, truncated };
}

/** One run a catch-up starts: when it counts as due, and the missed times it stands for. */
export interface CatchUpRun {
  time: Date;
  standsFor: Date[];
}

/**
 * What `catchUp` makes of the times missed: `none` nothing, `once` one run standing for all of them (due at
 * the latest), `all` one run per time.
 */
export function catchUpRuns(mode: ScheduleSettings['catchUp'], missed: readonly Date[]): CatchUpRun[] {
  if (missed.length === 0 || mode === 'none') return [];
  if (mode === 'once') return [{ time: missed[missed.length - 1], standsFor: [...missed] }];
  return missed.map((t) => ({ time: t, standsFor: [t] }));
}

export type OverlapDecision = 'start' | 'skip' | 'queue';

/**
 * What a due time does given the schedule's runs still going and the firings already waiting: `skip` records
 * it as skipped, `queue` waits for the running one to end (one waiting at most: a second is skipped), `allow`
 * starts beside.
 */
export function overlapDecision(mode: ScheduleSettings['overlap'], running: number, queued: number): OverlapDecision {
  if (running === 0 && queued === 0) return 'start';
  if (mode === 'allow') return 'start';
  if (mode === 'queue' && queued === 0) return 'queue';
  return 'skip';
}

/** The words recorded with a skipped time. */
export function skipReason(mode: ScheduleSettings['overlap'], runningRun: string | undefined): string {
  return mode === 'queue'
    ? `a firing already waits for ${runningRun ?? 'the running run'} to end (--overlap queue keeps one)`
    : `${runningRun ?? 'its last run'} was still running (--overlap skip)`;
}
