// Fan-out arithmetic and labelling: the run's exit code from its tasks', the cost summed, and the CLI's
// `[task N] ` label on every line even when a line arrives in pieces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { fanOutExitCode, sumCosts } from '../../agent/runs/fanOut';
import { RunReporter } from '../../agent/cli/runReporter';
import { costOf } from '../../agent/cost/cost';
import { loadPricing } from '../../agent/cost/pricing';
import { RunEvent } from '../../agent/protocol';

const task = (index: number, exitCode: number | null) => {
  const { prices } = loadPricing();
  return { index, exitCode, oomKilled: false, durationMs: 1000, cost: costOf({ cpus: 1, memoryMiB: 1024 }, 1000, prices, []) };
};

test('the run exits with the first non-zero task exit code by index, or 0', () => {
  assert.equal(fanOutExitCode([task(0, 0), task(1, 0)]), 0);
  assert.equal(fanOutExitCode([task(2, 9), task(0, 0), task(1, 3)]), 3);
  assert.equal(fanOutExitCode([task(0, 0), task(1, null), task(2, 1)]), null, 'a task that never ran: the run did not complete');
});

test('the cost of a fan-out run is the sum of its tasks\' costs, reference prices included', () => {
  const { prices, reference } = loadPricing();
  const hw = { cpus: 2, memoryMiB: 2048 };
  const parts = [costOf(hw, 1500, prices, reference), costOf(hw, 61_000, prices, reference)];
  const sum = sumCosts(parts, costOf(hw, 0, prices, reference));
  assert.ok(Math.abs(sum.total - parts[0].total - parts[1].total) < 1e-15);
  assert.equal(sum.billedMs, parts[0].billedMs + parts[1].billedMs);
  for (const [i, r] of sum.reference.entries()) assert.ok(Math.abs(r.total - parts[0].reference[i].total - parts[1].reference[i].total) < 1e-15);
});

test('the reporter labels every line of a task, whole lines only even when they come in pieces, and --task shows one task as printed', () => {
  const show = (taskFilter?: number) => {
    const stdout = new PassThrough();
    let text = '';
    stdout.on('data', (d) => (text += d));
    const r = new RunReporter({ json: false, tty: false, stdout, stderr: new PassThrough(), task: taskFilter });
    const log = (t: number, data: string): RunEvent => ({ kind: 'log', task: t, stream: 'stdout', time: '', data });
    for (const e of [log(0, 'a1\na'), log(1, 'b1\n'), log(0, '2\n'), log(1, 'b2\nb3\n')]) r.event('r-000000', 1, e);
    r.flush(); // the reporter writes once per tick
    return () => text;
  };
  const all = show();
  assert.equal(all(), '[task 0] a1\n[task 1] b1\n[task 0] a2\n[task 1] b2\n[task 1] b3\n', 'whole lines, never mixed');
  const one = show(1);
  assert.equal(one(), 'b1\nb2\nb3\n');
});
