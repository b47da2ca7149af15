// The hot pool's bookkeeping, with fake containers: sizes, expiry, dead entries, failures, concurrency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HotPool, PoolEntry } from '../../agent/engine/hotPool';

class Fake implements PoolEntry {
  discarded = false;
  dead = false;
  constructor(readonly n: number) {}
  alive(): boolean {
    return !this.dead && !this.discarded;
  }
  async discard(): Promise<void> {
    this.discarded = true;
  }
}

function pool(opts: { max?: number; idleMs?: number; fail?: boolean; delayMs?: number; concurrency?: number } = {}) {
  const made: Fake[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const p = new HotPool<string, Fake>({
    max: opts.max ?? 4, idleMs: opts.idleMs ?? 60_000, concurrency: opts.concurrency,
    make: async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, opts.delayMs ?? 1));
      inFlight--;
      if (opts.fail) throw new Error('cannot make');
      const f = new Fake(made.length);
      made.push(f);
      return f;
    },
  });
  return { p, made, maxInFlight: () => maxInFlight };
}

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

test('a wanted container is made once, taken once', async () => {
  const { p, made } = pool();
  p.want('k', 'spec');
  p.want('k', 'spec'); // already promised: no second one
  await settle();
  assert.equal(made.length, 1);
  assert.equal(p.ready('k'), 1);
  assert.equal(p.take('other'), undefined);
  assert.equal(p.take('k'), made[0]);
  assert.equal(p.take('k'), undefined);
});

test('more() asks for one beyond what is promised, never past the pool size, with at most `concurrency` makes at once', async () => {
  const { p, made, maxInFlight } = pool({ max: 3, delayMs: 10 });
  for (let i = 0; i < 10; i++) p.more('k', 'spec');
  await settle(100);
  assert.equal(made.length, 3);
  assert.equal(p.ready('k'), 3);
  assert.equal(maxInFlight(), 2);
});

test('the oldest idle container goes when the pool is over its size, and an idle one expires', async () => {
  const { p, made } = pool({ max: 1, idleMs: 80 });
  p.want('a', 'spec');
  await settle();
  p.want('b', 'spec');
  await settle();
  assert.equal(made.length, 2);
  assert.ok(made[0].discarded, 'a made way for b');
  assert.equal(p.ready('b'), 1);
  await settle(120);
  assert.ok(made[1].discarded, 'b expired');
  assert.equal(p.take('b'), undefined);
});

test('a dead container is not handed out, and is discarded', async () => {
  const { p, made } = pool();
  p.want('k', 'spec', 2);
  await settle();
  made[0].dead = true;
  assert.equal(p.ready('k'), 1);
  assert.equal(p.take('k'), made[1]);
  assert.ok(made[0].discarded);
});

test('a key whose containers cannot be made is given up after two failures', async () => {
  let calls = 0;
  const p = new HotPool<string, Fake>({ max: 4, idleMs: 1000, make: async () => { calls++; throw new Error('no'); } });
  for (let i = 0; i < 5; i++) {
    p.want('k', 'spec');
    await settle(5);
  }
  assert.equal(calls, 2);
});

test('close() discards the idle containers and what was being made, and makes no more', async () => {
  const { p, made } = pool({ delayMs: 20 });
  p.want('a', 'spec');
  await settle(40);
  p.want('b', 'spec'); // being made when close() comes
  await settle(5);
  await p.close();
  assert.equal(made.length, 2);
  assert.ok(made.every((f) => f.discarded));
  p.want('c', 'spec');
  await settle();
  assert.equal(made.length, 2);
  assert.equal(p.enabled, false);
});
