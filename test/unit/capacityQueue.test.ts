import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CapacityQueue } from '../../agent/runs/capacityQueue';

test('runs that fit start at once; others wait in order with their positions, and start as capacity frees', async () => {
  const q = new CapacityQueue({ cpus: 2, memoryMiB: 1024, gpus: {} });
  const positions: Record<string, number[]> = { b: [], c: [] };
  const releaseA = await q.acquire({ cpus: 2, memoryMiB: 512 }, () => assert.fail('a fits'));
  const order: string[] = [];
  const b = q.acquire({ cpus: 1, memoryMiB: 512 }, (p) => positions.b.push(p)).then((r) => (order.push('b'), r));
  const c = q.acquire({ cpus: 1, memoryMiB: 512 }, (p) => positions.c.push(p)).then((r) => (order.push('c'), r));
  assert.deepEqual(positions, { b: [1], c: [2] });
  releaseA();
  const [rb, rc] = await Promise.all([b, c]);
  assert.deepEqual(order, ['b', 'c']);
  rb();
  rc();
  const again = await q.acquire({ cpus: 2, memoryMiB: 1024 }, () => assert.fail('all free again'));
  again();
});

test('a waiting run can be cancelled, and the ones behind it move up', async () => {
  const q = new CapacityQueue({ cpus: 1, memoryMiB: 1024, gpus: { h100: 1 } });
  const release = await q.acquire({ cpus: 1, memoryMiB: 100, gpu: { type: 'h100', count: 1 } }, () => {});
  const ac = new AbortController();
  const first = q.acquire({ cpus: 1, memoryMiB: 100 }, () => {}, ac.signal);
  const positions: number[] = [];
  const second = q.acquire({ cpus: 1, memoryMiB: 100 }, (p) => positions.push(p));
  ac.abort(new Error('cancelled'));
  await assert.rejects(first, /cancelled/);
  assert.deepEqual(positions, [2, 1]);
  release();
  (await second)();
});

test('the head of the queue is not overtaken by a smaller run', async () => {
  const q = new CapacityQueue({ cpus: 4, memoryMiB: 4096, gpus: {} });
  const r1 = await q.acquire({ cpus: 3, memoryMiB: 100 }, () => {});
  let bigStarted = false;
  let smallStarted = false;
  const big = q.acquire({ cpus: 4, memoryMiB: 100 }, () => {}).then((r) => { bigStarted = true; return r; });
  const small = q.acquire({ cpus: 1, memoryMiB: 100 }, () => {}).then((r) => { smallStarted = true; return r; });
  await new Promise((r) => setImmediate(r));
  assert.equal(smallStarted, false, 'the small run waits behind the big one although it would fit');
  r1();
  (await big)();
  assert.equal(bigStarted, true);
  (await small)();
});
