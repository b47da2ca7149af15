import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costTotals, runRowText, sortRuns, volumeRowText } from '../../webview/sidebar/sidebarModel';
import type { RunRowView } from '../../webview/protocol';

const run = (runId: string, createdAt: string, more: Partial<RunRowView> = {}): RunRowView =>
  ({ runId, name: `${runId}/Dockerfile`, state: 'exited', createdAt, exitCode: 0, ...more });

test('runs are listed newest first whatever order the host sends', () => {
  const runs = [run('r-a', '2026-01-01T10:00:00Z'), run('r-c', '2026-01-03T10:00:00Z'), run('r-x', 'garbage'), run('r-b', '2026-01-02T10:00:00Z')];
  assert.deepEqual(sortRuns(runs).map((r) => r.runId), ['r-c', 'r-b', 'r-a', 'r-x']);
});

test('today counts the runs created since local midnight; overall counts all', () => {
  const now = new Date(2026, 0, 2, 15, 0, 0);
  const runs = [
    run('r-a', new Date(2026, 0, 2, 0, 0, 1).toISOString(), { costUsd: 0.5 }),
    run('r-b', new Date(2026, 0, 1, 23, 59, 59).toISOString(), { costUsd: 0.25 }),
    run('r-c', new Date(2026, 0, 2, 9).toISOString()),
  ];
  assert.deepEqual(costTotals(runs, now), { today: 0.5, overall: 0.75 });
});

test('row words: exit codes, OOM, stopped, in progress', () => {
  assert.equal(runRowText(run('r-a', 'x')).status, 'exit 0');
  assert.equal(runRowText(run('r-a', 'x', { exitCode: 2 })).tone, 'error');
  assert.equal(runRowText(run('r-a', 'x', { exitCode: 137, oomKilled: true })).status, 'out of memory');
  assert.equal(runRowText(run('r-a', 'x', { state: 'cancelled' })).status, 'stopped');
  const live = runRowText(run('r-a', 'x', { state: 'running', start: 'warm', durationMs: 65_000, costUsd: 0.0042 }));
  assert.deepEqual([live.status, live.tone, live.duration, live.cost], ['running', 'active', '1m 05s', '$0.004200']);
  assert.equal(live.label, 'r-a/Dockerfile, running, warm start, 1m 05s, $0.004200');
});

test('a volume row: its size, its monthly cost, or the runs using it now', () => {
  assert.deepEqual(volumeRowText({ name: 'models', sizeBytes: 10 * 1024 ** 3, monthlyCost: 0.7, inUse: [] }),
    { size: '10.0 GiB', detail: '$0.7000/month', label: 'Volume models, 10.0 GiB, $0.7000/month, not in use' });
  assert.deepEqual(volumeRowText({ name: 'cache', sizeBytes: 2048, monthlyCost: 0.00000013, inUse: ['r-abc123'] }).detail, 'in use by r-abc123');
});
