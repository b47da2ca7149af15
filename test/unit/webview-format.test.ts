import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatClock, formatDuration, formatUsd } from '../../webview/components/format';
import { compare } from '../../webview/components/costView';

test('cost keeps four significant digits below a cent, cents above', () => {
  assert.equal(formatUsd(0), '$0.00');
  assert.equal(formatUsd(0.000412), '$0.0004120');
  assert.equal(formatUsd(0.0012346), '$0.001235');
  assert.equal(formatUsd(0.0123), '$0.0123');
  assert.equal(formatUsd(1.5), '$1.5000');
  assert.equal(formatUsd(1234.5), '$1234.50');
  assert.equal(formatUsd(NaN), '$0.00');
});

test('durations read as people say them', () => {
  assert.equal(formatDuration(850), '850 ms');
  assert.equal(formatDuration(12_345), '12.3 s');
  assert.equal(formatDuration(59_999), '59.9 s');
  assert.equal(formatDuration(185_000), '3m 05s');
  assert.equal(formatDuration(7_440_000), '2h 04m');
  assert.equal(formatDuration(-1), '–');
});

test('bytes in binary units', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(4 * 1024 ** 3), '4.0 GiB');
});

test('clock time with milliseconds, local', () => {
  const t = new Date(2026, 0, 2, 3, 4, 5, 6).getTime();
  assert.equal(formatClock(t), '03:04:05.006');
});

test('reference comparison says how many times this run', () => {
  assert.equal(compare(0.001, 0.002), '(2.0× this run)');
  assert.equal(compare(0.001, 0.015), '(15× this run)');
  assert.equal(compare(0, 0.01), '');
});
