// The rules of a schedule (agent/schedules/policy.ts), and what croner does at daylight-saving changes:
// the README states these behaviours, and this file is where they are checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catchUpRuns, checkCron, missedTimes, nextTimes, overlapDecision } from '../../agent/schedules/policy';

const iso = (ds: Date[]) => ds.map((d) => d.toISOString());
/** Wall-clock time in a zone, `HH:MM`, to say what a local user sees. */
const wall = (d: Date, tz: string) => d.toLocaleString('sv-SE', { timeZone: tz }).slice(11, 16);

test('missed times: after the last one dealt with, up to now inclusive, the latest kept when there are too many', () => {
  const s = { cron: '*/5 * * * * *', timezone: 'UTC' };
  const { times, truncated } = missedTimes(s, new Date('2025-01-01T00:00:00Z'), new Date('2025-01-01T00:00:20Z'));
  assert.deepEqual(iso(times), ['2025-01-01T00:00:05.000Z', '2025-01-01T00:00:10.000Z', '2025-01-01T00:00:15.000Z', '2025-01-01T00:00:20.000Z']);
  assert.equal(truncated, 0);
  const many = missedTimes({ cron: '* * * * * *', timezone: 'UTC' }, new Date('2025-01-01T00:00:00Z'), new Date('2025-01-01T01:00:00Z'), 100);
  assert.equal(many.times.length, 100);
  assert.equal(many.truncated, 3600 - 100);
  assert.equal(many.times[99].toISOString(), '2025-01-01T01:00:00.000Z');
  assert.equal(missedTimes(s, new Date('2025-01-01T00:00:05Z'), new Date('2025-01-01T00:00:09Z')).times.length, 0);
});

test('catch-up: none drops the missed times, once is one run standing for all, all is one run each', () => {
  const missed = [new Date('2025-01-01T00:05:00Z'), new Date('2025-01-01T00:10:00Z'), new Date('2025-01-01T00:15:00Z')];
  assert.deepEqual(catchUpRuns('none', missed), []);
  const once = catchUpRuns('once', missed);
  assert.equal(once.length, 1);
  assert.equal(once[0].time.toISOString(), '2025-01-01T00:15:00.000Z');
  assert.deepEqual(iso(once[0].standsFor), iso(missed));
  const all = catchUpRuns('all', missed);
  assert.deepEqual(all.map((r) => [r.time.toISOString(), r.standsFor.length]), iso(missed).map((t) => [t, 1]));
  assert.deepEqual(catchUpRuns('once', []), []);
});

test('overlap: skip skips while a run goes on, queue keeps one waiting and skips more, allow always starts', () => {
  assert.equal(overlapDecision('skip', 0, 0), 'start');
  assert.equal(overlapDecision('skip', 1, 0), 'skip');
  assert.equal(overlapDecision('queue', 1, 0), 'queue');
  assert.equal(overlapDecision('queue', 1, 1), 'skip');
  // A waiting firing goes first: a time that finds nothing running but one waiting does not jump ahead of it.
  assert.equal(overlapDecision('queue', 0, 1), 'skip');
  assert.equal(overlapDecision('allow', 3, 0), 'start');
  assert.equal(overlapDecision('queue', 0, 0), 'start');
});

test('bad expressions and zones are refused in words that name the flag', () => {
  assert.equal(checkCron({ cron: '*/5 * * * * *', timezone: 'Europe/Berlin' }), undefined);
  assert.match(checkCron({ cron: 'every day', timezone: 'UTC' })!, /^--cron "every day": .*five, six, or seven/);
  assert.match(checkCron({ cron: '0 2 * * *', timezone: 'Mars/Olympus' })!, /^--timezone Mars\/Olympus: not an IANA time zone/);
});

test('Europe/Berlin spring forward (2025-03-30, 02:00 -> 03:00): a time in the skipped hour runs once, at 03:00', () => {
  const tz = 'Europe/Berlin';
  const daily = nextTimes({ cron: '30 2 * * *', timezone: tz }, 3, new Date('2025-03-29T00:00:00Z'));
  assert.deepEqual(iso(daily), ['2025-03-29T01:30:00.000Z', '2025-03-30T01:00:00.000Z', '2025-03-31T00:30:00.000Z']);
  assert.deepEqual(daily.map((d) => wall(d, tz)), ['02:30', '03:00', '02:30']);
  // Several times inside the skipped hour: none of them runs that day (croner moves only a single one).
  const quarter = nextTimes({ cron: '*/15 2 * * *', timezone: tz }, 2, new Date('2025-03-29T23:00:00Z'));
  assert.deepEqual(iso(quarter), ['2025-03-31T00:00:00.000Z', '2025-03-31T00:15:00.000Z']);
  // Hourly runs every real hour: 01:00, then 03:00 (there is no 02:00).
  const hourly = nextTimes({ cron: '0 * * * *', timezone: tz }, 3, new Date('2025-03-29T23:30:00Z'));
  assert.deepEqual(hourly.map((d) => wall(d, tz)), ['01:00', '03:00', '04:00']);
});

test('Europe/Berlin fall back (2025-10-26, 03:00 -> 02:00): one time in the repeated hour runs once; several run in both passes', () => {
  const tz = 'Europe/Berlin';
  const daily = nextTimes({ cron: '30 2 * * *', timezone: tz }, 2, new Date('2025-10-25T23:00:00Z'));
  // 02:30 summer time (00:30 UTC) only, not 02:30 winter time (01:30 UTC).
  assert.deepEqual(iso(daily), ['2025-10-26T00:30:00.000Z', '2025-10-27T01:30:00.000Z']);
  const twice = nextTimes({ cron: '0,30 2 * * *', timezone: tz }, 5, new Date('2025-10-25T23:00:00Z'));
  assert.deepEqual(iso(twice), ['2025-10-26T00:00:00.000Z', '2025-10-26T00:30:00.000Z', '2025-10-26T01:00:00.000Z', '2025-10-26T01:30:00.000Z', '2025-10-27T01:00:00.000Z']);
  assert.deepEqual(twice.slice(0, 4).map((d) => wall(d, tz)), ['02:00', '02:30', '02:00', '02:30']);
  // Hourly: every real hour, so 02:00 comes twice, an hour apart.
  const hourly = nextTimes({ cron: '0 * * * *', timezone: tz }, 3, new Date('2025-10-25T23:30:00Z'));
  assert.deepEqual(iso(hourly), ['2025-10-26T00:00:00.000Z', '2025-10-26T01:00:00.000Z', '2025-10-26T02:00:00.000Z']);
  assert.deepEqual(hourly.map((d) => wall(d, tz)), ['02:00', '02:00', '03:00']);
});

test('America/New_York: the skipped 02:30 (2025-03-09) runs at 03:00, the repeated 01:30 (2025-11-02) once', () => {
  const tz = 'America/New_York';
  const spring = nextTimes({ cron: '30 2 * * *', timezone: tz }, 3, new Date('2025-03-08T00:00:00Z'));
  assert.deepEqual(spring.map((d) => wall(d, tz)), ['02:30', '03:00', '02:30']);
  assert.equal(spring[1].toISOString(), '2025-03-09T07:00:00.000Z');
  const fall = nextTimes({ cron: '30 1 * * *', timezone: tz }, 3, new Date('2025-11-01T00:00:00Z'));
  assert.deepEqual(iso(fall), ['2025-11-01T05:30:00.000Z', '2025-11-02T05:30:00.000Z', '2025-11-03T06:30:00.000Z']);
});
