import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAtBottom, scrollTopForRow, visibleRange } from '../../webview/components/virtualWindow';

test('only the rows in view plus the overscan are rendered, even for 100,000 lines', () => {
  assert.deepEqual(visibleRange(0, 190, 19, 100_000, 10), { start: 0, end: 20 });
  assert.deepEqual(visibleRange(19 * 50_000, 190, 19, 100_000, 10), { start: 49_990, end: 50_020 });
  assert.deepEqual(visibleRange(19 * 99_990, 190, 19, 100_000, 10), { start: 99_980, end: 100_000 });
});

test('partial rows at both edges count; odd inputs give an empty or clamped range', () => {
  assert.deepEqual(visibleRange(10, 20, 19, 100, 0), { start: 0, end: 2 });
  assert.deepEqual(visibleRange(0, 100, 19, 0), { start: 0, end: 0 });
  assert.deepEqual(visibleRange(-50, 100, 19, 3, 0), { start: 0, end: 3 });
  assert.deepEqual(visibleRange(1e9, 100, 19, 3, 0), { start: 3, end: 3 });
});

test('at the bottom within the slack', () => {
  assert.equal(isAtBottom(800, 200, 1000), true);
  assert.equal(isAtBottom(797, 200, 1000), true);
  assert.equal(isAtBottom(790, 200, 1000), false);
});

test('scrolling to a row is clamped to the scrollable range', () => {
  assert.equal(scrollTopForRow(10, 20, 100, 1000), 200);
  assert.equal(scrollTopForRow(999, 20, 100, 1000), 19_900);
  assert.equal(scrollTopForRow(-1, 20, 100, 1000), 0);
});
