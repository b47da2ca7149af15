// The run panel's paint report (webview `trace` message) as the extension host takes it into a run's marks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { panelMarksToAdd } from '../../extension/runs/panelMarks';

const t = 1_765_000_000_000;

test('a report of received, inserted and painted (and the click before them) is taken whole', () => {
  assert.deepEqual(panelMarksToAdd({ commandAt: t }, { clickAt: t - 8, receivedAt: t + 60, insertedAt: t + 62.5, paintedAt: t + 80 }),
    { clickAt: t - 8, receivedAt: t + 60, insertedAt: t + 62.5, paintedAt: t + 80 });
});

test('a report without a click (the run did not start from this page) adds the other three', () => {
  assert.deepEqual(panelMarksToAdd({}, { receivedAt: t, insertedAt: t + 1, paintedAt: t + 17 }), { receivedAt: t, insertedAt: t + 1, paintedAt: t + 17 });
  assert.deepEqual(panelMarksToAdd({}, { clickAt: t + 5, receivedAt: t, insertedAt: t + 1, paintedAt: t + 17 }), { receivedAt: t, insertedAt: t + 1, paintedAt: t + 17 },
    'a click after the line arrived is not the click that started it');
});

test('a malformed report adds nothing', () => {
  for (const bad of [undefined, null, 'x', 5, {}, { receivedAt: t, insertedAt: t }, { receivedAt: 'now', insertedAt: t, paintedAt: t },
    { receivedAt: t, insertedAt: NaN, paintedAt: t }, { receivedAt: t, insertedAt: t, paintedAt: Infinity }, { receivedAt: -1, insertedAt: t, paintedAt: t },
    { receivedAt: t + 2, insertedAt: t + 1, paintedAt: t + 3 }, { receivedAt: t, insertedAt: t + 3, paintedAt: t + 2 }]) {
    assert.equal(panelMarksToAdd({}, bad), undefined, JSON.stringify(bad));
  }
});

test('a second report for a run already painted (a reloaded panel replaying it) adds nothing', () => {
  assert.equal(panelMarksToAdd({ paintedAt: t }, { receivedAt: t + 900, insertedAt: t + 901, paintedAt: t + 917 }), undefined);
});
