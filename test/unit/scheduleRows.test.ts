// The words and rows of the sidebar's Schedules section, from the agent's replies (pure code, TZ pinned).
process.env.TZ = 'Europe/Berlin';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ScheduleSummary } from '../../agent/protocol';
import type { RunRowView } from '../../webview/protocol';
import { localTimeText, scheduleRow } from '../../extension/schedules/scheduleRows';
import { defaultScheduleName } from '../../extension/schedules/scheduleNames';
import { localWhen, runWhen, scheduleRowText } from '../../webview/sidebar/scheduleModel';

const summary = (more: Partial<ScheduleSummary> = {}): ScheduleSummary => ({
  name: 'nightly', settings: { cron: '0 2 * * *', timezone: 'Europe/Berlin', overlap: 'skip', catchUp: 'once' },
  hardware: { cpus: 1, memoryMiB: 512 }, image: 'sha256:x', createdAt: '2026-03-01T10:00:00.000Z', paused: false,
  next: ['2026-03-29T00:00:00.000Z', '2026-03-30T00:00:00.000Z', '2026-03-31T00:00:00.000Z'], timezone: 'Europe/Berlin',
  recent: [], runs: 0, skipped: 0, cost: 0, ...more,
});
const run = (runId: string, name: string, createdAt: string): RunRowView => ({ runId, name, state: 'exited', createdAt, exitCode: 0 });

test('a schedule row keeps its own runs (named "schedule NAME"), newest first', () => {
  const row = scheduleRow(summary(), [
    run('r-1', 'schedule nightly', '2026-03-01T02:00:00Z'), run('r-2', 'labelled/Dockerfile', '2026-03-02T02:00:00Z'),
    run('r-3', 'schedule nightly', '2026-03-03T02:00:00Z'), run('r-4', 'schedule nightly-2', '2026-03-04T02:00:00Z'),
  ]);
  assert.deepEqual(row.runs.map((r) => r.runId), ['r-3', 'r-1']);
  assert.deepEqual([row.cron, row.timezone, row.paused, row.last], ['0 2 * * *', 'Europe/Berlin', false, undefined]);
});

test('next time in local time (here Europe/Berlin: CET, then CEST from 29 March 2026), last result and totals', () => {
  const now = new Date('2026-03-28T12:00:00Z');
  assert.equal(localWhen('2026-03-29T00:00:00.000Z', now), 'Sun 29 Mar 01:00');
  assert.equal(localWhen('2026-03-30T00:00:00.000Z', now), 'Mon 30 Mar 02:00');
  assert.equal(localWhen('2027-01-04T01:00:05.000Z', now), 'Mon 4 Jan 2027 02:00:05');
  assert.equal(runWhen('2026-12-04T19:49:03.000Z'), '4 Dec 20:49');
  assert.equal(localTimeText('2026-03-30T00:00:00.000Z'), '2026-03-30 02:00:00 CEST');
  const fresh = scheduleRowText(scheduleRow(summary(), []), now);
  assert.deepEqual([fresh.next, fresh.last, fresh.tone, fresh.totals], ['next Sun 29 Mar 01:00', 'not run yet', 'none', '0 runs · $0.00']);
  const ran = scheduleRowText(scheduleRow(summary({
    runs: 3, skipped: 1, cost: 0.0012, last: { time: '2026-03-28T01:00:00.000Z', trigger: 'cron', result: 'exited', exitCode: 2, runId: 'r-9' },
  }), []), now);
  assert.deepEqual([ran.last, ran.tone, ran.totals], ['last: exit 2', 'error', '3 runs · $0.001200 · 1 skipped']);
  const skipped = scheduleRowText(scheduleRow(summary({ last: { time: 'x', trigger: 'cron', result: 'skipped', reason: 'run r-8 still going' } }), []), now);
  assert.deepEqual([skipped.last, skipped.tone], ['last: skipped', 'warning']);
  assert.match(skipped.label, /run r-8 still going/);
  const paused = scheduleRowText(scheduleRow(summary({ paused: true, next: [] }), []), now);
  assert.equal(paused.next, 'paused');
});

test('the default name comes from the folder, made a schedule name', () => {
  assert.deepEqual(['labelled', 'My_Job.v2', '---', 'API'].map(defaultScheduleName), ['labelled', 'my-job-v2', 'job', 'api']);
});
