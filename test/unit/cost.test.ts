// What a run is billed: billed duration, allocated resources, reference totals, the pricing table and its override.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CostBreakdown, ReferenceRate, type Prices } from '../../agent/protocol/messages';
import { billedMs, costOf, formatHardware, formatUsd, hourlyRate } from '../../agent/cost/cost';
import { loadPricing } from '../../agent/cost/pricing';

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${what}: ${actual} != ${expected}`);

test('billed duration rounds up to the increment; nothing run bills nothing', () => {
  assert.equal(billedMs(0, 100), 0);
  assert.equal(billedMs(1, 100), 100);
  assert.equal(billedMs(100, 100), 100);
  assert.equal(billedMs(101, 100), 200);
  assert.equal(billedMs(59_001, 1000), 60_000);
  assert.equal(billedMs(1234, 1), 1234);
  assert.throws(() => billedMs(10, 0), /increment/);
});

// Round numbers so the expected figures below can be worked out by hand.
const prices: Prices = {
  currency: 'USD', vcpuSecond: 0.001, gibSecond: 0.0001, gpuSecond: { h100: 0.01 }, incrementMs: 100, source: 'test', date: 'test',
};
const reference: ReferenceRate[] = [
  { name: 'per-second, no GPUs', vcpuSecond: 0.002, gibSecond: 0.0002, gpuSecond: {}, incrementMs: 1000, source: 'test', date: 'test' },
  { name: 'memory only', vcpuSecond: 0, gibSecond: 0.00003, gpuSecond: { h100: 0.02 }, incrementMs: 1, source: 'test', date: 'test' },
].map((r) => ReferenceRate.parse(r));

test('a run costs its allocated resources times its billed duration', () => {
  const hw = { cpus: 2, memoryMiB: 3072, gpu: { type: 'h100', count: 2 } };
  const cost = CostBreakdown.parse(costOf(hw, 1234, prices, reference));
  assert.equal(cost.billedMs, 1300);
  close(cost.vcpu, 2 * 0.001 * 1.3, 'vcpu');
  close(cost.memory, 3 * 0.0001 * 1.3, 'memory');
  close(cost.gpu, 2 * 0.01 * 1.3, 'gpu');
  close(cost.total, 0.0026 + 0.00039 + 0.026, 'total');
  assert.equal(cost.currency, 'USD');
  // Each reference bills with its own increment; a GPU it has no rate for is left out and named.
  assert.equal(cost.reference.length, 2);
  assert.equal(cost.reference[0].name, 'per-second, no GPUs');
  close(cost.reference[0].total, (2 * 0.002 + 3 * 0.0002) * 2, 'per-second reference (1234 ms bills 2 s)');
  assert.equal(cost.reference[0].unpriced, 'no h100');
  assert.equal(cost.reference[1].unpriced, undefined);
  close(cost.reference[1].total, (3 * 0.00003 + 2 * 0.02) * 1.234, 'memory-only reference (1 ms increment)');
});

test('a run without a GPU, or one too short to bill, costs accordingly', () => {
  const none = costOf({ cpus: 0.5, memoryMiB: 512 }, 0, prices, reference);
  assert.deepEqual([none.total, none.billedMs, none.reference.map((r) => r.total)], [0, 0, [0, 0]]);
  const cpuOnly = costOf({ cpus: 4, memoryMiB: 1024 }, 100, prices, []);
  close(cpuOnly.total, 4 * 0.001 * 0.1 + 1 * 0.0001 * 0.1, 'total');
  assert.equal(cpuOnly.gpu, 0);
  assert.deepEqual(cpuOnly.reference, []);
});

test('hourly rate is the per-second rates times 3600', () => {
  close(hourlyRate({ cpus: 2, memoryMiB: 3072, gpu: { type: 'h100', count: 1 } }, prices), (0.002 + 0.0003 + 0.01) * 3600, 'rate');
  // A GPU type the table does not price adds nothing.
  close(hourlyRate({ cpus: 1, memoryMiB: 1024, gpu: { type: 'rtx4090', count: 1 } }, prices), 0.0011 * 3600, 'unpriced gpu');
});

test('amounts are shown in cents, or three significant digits under a cent', () => {
  assert.equal(formatUsd(0), '$0.00');
  assert.equal(formatUsd(0.000123), '$0.000123');
  assert.equal(formatUsd(0.0012345), '$0.00123');
  assert.equal(formatUsd(0.086), '$0.09');
  assert.equal(formatUsd(12.344), '$12.34');
  assert.equal(formatUsd(1234.5), '$1,234.50');
});

test('a hardware choice reads as resources and hourly price at the default list prices', () => {
  const { prices: list } = loadPricing();
  // 2 x $0.034 + 4 x $0.0045 = $0.086 an hour.
  assert.equal(formatHardware({ cpus: 2, memoryMiB: 4096 }, list), '2 vCPU · 4 GiB · $0.09/h');
  // + one h100 at $2.80 = $2.886.
  assert.equal(formatHardware({ cpus: 2, memoryMiB: 4096, gpu: { type: 'h100', count: 1 } }, list), '2 vCPU · 4 GiB · h100 ×1 · $2.89/h');
  assert.equal(formatHardware({ cpus: 0.5, memoryMiB: 512 }, list), '0.5 vCPU · 512 MiB · $0.02/h');
});

test('the default table stores the published hourly figures per second, each with a source and date', () => {
  const { prices: list, reference: refs } = loadPricing();
  const perHour = (perSecond: number) => perSecond * 3600;
  close(perHour(list.vcpuSecond), 0.034, 'vCPU');
  close(perHour(list.gibSecond), 0.0045, 'GiB');
  const gpuHourly = { h200: 3.5, h100: 2.8, a100: 1.6, l4: 0.7, t4: 0.35 };
  assert.deepEqual(Object.keys(list.gpuSecond).sort(), Object.keys(gpuHourly).sort());
  for (const [type, hourly] of Object.entries(gpuHourly)) close(perHour(list.gpuSecond[type]), hourly, type);
  assert.match(list.source, /ByteNite default list price/);
  assert.equal(list.date, '2026-11-27');

  const fargate = refs.find((r) => r.name.includes('Fargate'));
  const lambda = refs.find((r) => r.name.includes('Lambda'));
  assert.ok(fargate && lambda);
  close(perHour(fargate.vcpuSecond), 0.04048, 'Fargate vCPU');
  close(perHour(fargate.gibSecond), 0.004445, 'Fargate GB');
  assert.equal(fargate.incrementMs, 1000);
  assert.match(fargate.source, /1-minute minimum/);
  assert.equal(lambda.gibSecond, 0.0000166667);
  assert.equal(lambda.vcpuSecond, 0);
  assert.equal(lambda.incrementMs, 1);
  assert.match(lambda.source, /proportion to the memory/);
  assert.equal(fargate.minimumMs, 60_000);
  for (const r of refs) assert.ok(r.source.length > 40 && r.date.length > 0, `${r.name} has a source and a date`);
  // The platforms users compare with, serverless and not, CPU and GPU.
  for (const name of ['Cloud Run', 'Modal', 'RunPod Serverless', 'RunPod Pod']) assert.ok(refs.some((r) => r.name.includes(name)), name);
  const modal = refs.find((r) => r.name === 'Modal')!;
  close(perHour(modal.gpuSecond.h100), 3.9492, 'Modal H100');
  const runpod = refs.find((r) => r.name.startsWith('RunPod Serverless'))!;
  assert.equal(runpod.gpuSecond.h100, 0.00116);
  assert.equal(runpod.tailMs, 5000);
  assert.equal(runpod.gpuOnly, true);
});

test('a reference bills its own minimum and idle tail, and says what it does not sell', () => {
  const rate = (r: Partial<ReferenceRate>) => ReferenceRate.parse({ name: 'r', vcpuSecond: 0.001, gibSecond: 0, gpuSecond: { h100: 0.01 }, incrementMs: 1000, source: 's', date: 'd', ...r });
  const cpu = { cpus: 1, memoryMiB: 1024 };
  const h100 = { ...cpu, gpu: { type: 'h100', count: 1 } };
  // A one-minute minimum: a 2 s run is billed 60 s.
  close(costOf(cpu, 2000, prices, [rate({ minimumMs: 60_000 })]).reference[0].total, 0.001 * 60, 'minimum');
  // A 5 s tail after the work: 2.5 s of work bills 8 s (7.5 s rounded up to the second).
  close(costOf(h100, 2500, prices, [rate({ tailMs: 5000 })]).reference[0].total, 0.011 * 8, 'tail');
  // Nothing run: neither the minimum nor the tail is billed.
  assert.equal(costOf(h100, 0, prices, [rate({ minimumMs: 60_000, tailMs: 5000 })]).reference[0].total, 0);
  // A GPU-only platform prices a GPU run, and names a CPU-only one as not sold there.
  const gpuOnly = rate({ vcpuSecond: 0, gpuOnly: true });
  close(costOf(h100, 1000, prices, [gpuOnly]).reference[0].total, 0.01, 'gpu-only, gpu run');
  assert.deepEqual(costOf(cpu, 1000, prices, [gpuOnly]).reference[0], { name: 'r', total: 0, unpriced: 'GPU machines only' });
  // A GPU type it has no price for: the rest is priced, and the missing type named.
  assert.deepEqual(costOf({ ...cpu, gpu: { type: 'h200', count: 1 } }, 1000, prices, [rate({})]).reference[0], { name: 'r', total: 0.001, unpriced: 'no h200' });
});

function withFile(contents: string, fn: (path: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'bytenite-prices-'));
  try {
    const path = join(dir, 'prices.json');
    writeFileSync(path, contents);
    fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an override file is merged over the defaults, field by field', () => {
  const defaults = loadPricing();
  withFile(JSON.stringify({ prices: { vcpuSecond: 0.00002, gpuSecond: { rtx4090: 0.0001, h100: 0 } } }), (path) => {
    const { prices: p, reference: r } = loadPricing(path);
    assert.equal(p.vcpuSecond, 0.00002);
    assert.equal(p.gibSecond, defaults.prices.gibSecond);
    assert.deepEqual(p.gpuSecond, { ...defaults.prices.gpuSecond, rtx4090: 0.0001, h100: 0 });
    assert.equal(p.incrementMs, defaults.prices.incrementMs);
    // Changed prices no longer claim to be the project's list prices.
    assert.match(p.source, /set by the agent's owner in prices\.json/);
    assert.match(p.date, /^\d{4}-\d{2}-\d{2}$/);
    assert.deepEqual(r, defaults.reference);
  });
  withFile(JSON.stringify({ prices: { source: 'our cluster, 2026 budget', date: '2026-12-01' }, reference: [] }), (path) => {
    const { prices: p, reference: r } = loadPricing(path);
    assert.equal(p.source, 'our cluster, 2026 budget');
    assert.equal(p.date, '2026-12-01');
    assert.deepEqual(r, [], 'an array in the override replaces the default one');
  });
  // The defaults themselves are untouched by an override.
  assert.deepEqual(loadPricing(), defaults);
});

test('a bad override file is refused with the file and the field named', () => {
  withFile(JSON.stringify({ prices: { vcpuSecond: -1 } }), (path) => {
    assert.throws(() => loadPricing(path), (err: Error) => err.message.includes(path) && err.message.includes('prices.vcpuSecond'));
  });
  withFile(JSON.stringify({ prices: { vcpuPerSecond: 1 } }), (path) => {
    assert.throws(() => loadPricing(path), (err: Error) => err.message.includes(path) && err.message.includes('vcpuPerSecond'));
  });
  withFile(JSON.stringify({ reference: [{ name: 'incomplete' }] }), (path) => {
    assert.throws(() => loadPricing(path), (err: Error) => err.message.includes(path) && err.message.includes('reference.0.'));
  });
  withFile('{ "prices": ', (path) => {
    assert.throws(() => loadPricing(path), (err: Error) => err.message.includes(path) && /not valid JSON/.test(err.message));
  });
  withFile('[]', (path) => assert.throws(() => loadPricing(path), (err: Error) => err.message.includes(path)));
  assert.throws(() => loadPricing('/nonexistent/bytenite-prices.json'), /\/nonexistent\/bytenite-prices\.json/);
});
