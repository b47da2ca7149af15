// The image budget's policy and memory, without an engine: which images and build cache go, what the
// agent remembers across a restart, and why a run starts cold. The keeper runs against a fake store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planCache, planImages, type ImageFacts } from '../../agent/images/imagePolicy';
import { ImageRecord } from '../../agent/images/imageRecord';
import { ImageKeeper, formatSize } from '../../agent/images/imageKeeper';
import type { ImageSnapshot, ImageStore } from '../../agent/images/imageStore';
import { applyBuildProgress, newBuildProgress } from '../../agent/engine/buildProgress';
import { createLogger } from '../../agent/log';

const MB = 1024 * 1024;
const img = (n: number, over: Partial<ImageFacts> = {}): ImageFacts => ({
  id: `sha256:${String(n).padStart(12, '0')}`, digest: `d${n}`, uniqueBytes: 3 * MB, createdMs: n, containers: 0, ...over,
});
const ids = (xs: ImageFacts[]) => xs.map((x) => x.digest).sort();

test('the most recently used images are kept within the budget; the least recently used beyond it go', () => {
  const images = [1, 2, 3, 4, 5].map((n) => img(n));
  // Used in the order 3, 1, 5, 2, 4 (4 most recently).
  const used: Record<string, number> = { d3: 100, d1: 200, d5: 300, d2: 400, d4: 500 };
  const plan = planImages(images, 10 * MB, (d) => used[d], new Set());
  assert.deepEqual(ids(plan.keep), ['d2', 'd4', 'd5']);
  assert.deepEqual(ids(plan.remove), ['d1', 'd3']);
  assert.equal(plan.keptBytes, 9 * MB);
});

test('an image not in the record counts as used when it was made', () => {
  const plan = planImages([img(1, { createdMs: 50 }), img(2, { createdMs: 10 })], 3 * MB, () => undefined, new Set());
  assert.deepEqual(ids(plan.keep), ['d1']);
});

test('once one image does not fit, every older one goes, even a small one that would', () => {
  const images = [img(1, { uniqueBytes: MB }), img(2, { uniqueBytes: 8 * MB }), img(3, { uniqueBytes: 3 * MB })];
  const plan = planImages(images, 10 * MB, (d) => ({ d1: 1, d2: 2, d3: 3 })[d], new Set());
  assert.deepEqual(ids(plan.keep), ['d3']);
  assert.deepEqual(ids(plan.remove), ['d1', 'd2']);
});

test('an image a run needs or a container uses is never removed, and its size is counted first', () => {
  const images = [img(1), img(2, { containers: 1 }), img(3), img(4)];
  const plan = planImages(images, 7 * MB, (d) => ({ d1: 1, d2: 2, d3: 3, d4: 4 })[d], new Set([img(1).id]));
  // d1 (a waiting run) and d2 (a container) stay: 6 MB; only 1 MB is left, so d4 and d3 go.
  assert.deepEqual(ids(plan.keep), ['d1', 'd2']);
  assert.deepEqual(ids(plan.remove), ['d3', 'd4']);
  // A budget smaller than what is needed keeps what is needed, and nothing else.
  const tight = planImages(images, MB, () => undefined, new Set([img(1).id]));
  assert.deepEqual(ids(tight.keep), ['d1', 'd2']);
});

test('build cache: the newest kept within its budget', () => {
  const plan = planCache([{ id: 'a', bytes: 4, createdMs: 1 }, { id: 'b', bytes: 4, createdMs: 3 }, { id: 'c', bytes: 4, createdMs: 2 }], 9);
  assert.deepEqual(plan.keep.map((e) => e.id), ['b', 'c']);
  assert.deepEqual(plan.remove.map((e) => e.id), ['a']);
});

test('the record survives a restart: last use, removals, images builds made; written whole', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-imgrec-'));
  try {
    const r = ImageRecord.in(dir);
    r.used('d1', 1000);
    r.removed('d2', { at: Date.now(), budgetBytes: 2 * 1024 ** 3 });
    r.madeByBuild('0123456789abcdef', 5);
    r.save();
    const back = ImageRecord.in(dir);
    assert.equal(back.lastUsed('d1'), 1000);
    assert.equal(back.removal('d2')?.budgetBytes, 2 * 1024 ** 3);
    assert.equal(back.madeAt('sha256:0123456789abffff'.replace('ffff', 'cdef')), 5);
    back.used('d2');
    assert.equal(back.removal('d2'), undefined, 'built or run again: no longer removed');
    back.forgetMade(() => false);
    back.save();
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(path.join(dir, 'images.json'), 'utf8')).made), []);
    // A broken file starts afresh rather than stopping the agent.
    const broken = new ImageRecord(path.join(dir, 'runs'));
    assert.equal(broken.lastUsed('d1'), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the build progress lists the images a build made, not those taken from the cache', () => {
  const s = newBuildProgress();
  const stream = [
    'Step 1/4 : FROM scratch\n', ' ---> \n', 'Step 2/4 : COPY busybox /bin/busybox\n', ' ---> Using cache\n', ' ---> 1441d6181f6b\n',
    'Step 3/4 : COPY big.bin /big.bin\n', ' ---> 5abec74d175f\n', 'Step 4/4 : LABEL io.bytenite.managed=1\n', ' ---> Running in 7c68a5b99a95\n',
    'Removing intermediate container 7c68a5b99a95\n', ' ---> a8a1ca7c4113\n',
  ];
  for (const line of stream) applyBuildProgress(s, { stream: line }, () => {}, () => {}, 1);
  assert.deepEqual(s.made, ['5abec74d175f', 'a8a1ca7c4113']);
});

/** A store whose images are removed in memory; `refuse` ids the engine will not remove. */
class FakeStore implements ImageStore {
  events?: ImageStore['events'];
  removed: string[] = [];
  refuse = new Set<string>();
  isBuilding = false;
  snapshots = 0;
  constructor(public snap: ImageSnapshot, private readonly disk?: number) {}
  async snapshot(): Promise<ImageSnapshot> {
    this.snapshots++;
    return this.snap;
  }
  async remove(id: string): Promise<boolean> {
    if (this.refuse.has(id)) return false;
    this.removed.push(id);
    this.snap = {
      ...this.snap, images: this.snap.images.filter((i) => i.id !== id), dangling: this.snap.dangling.filter((i) => i.id !== id),
      untagged: this.snap.untagged.filter((i) => i.id !== id),
    };
    return true;
  }
  pruned: number[] = [];
  async pruneBuildKit(keep: number): Promise<number> {
    this.pruned.push(keep);
    return 0;
  }
  async diskBytes() {
    return this.disk !== undefined ? { bytes: this.disk, dir: '/var/lib/docker' } : undefined;
  }
  pending(): ReadonlySet<string> {
    return new Set();
  }
  building(): boolean {
    return this.isBuilding;
  }
}

const snap = (over: Partial<ImageSnapshot> = {}): ImageSnapshot => ({ images: [], dangling: [], untagged: [], allIds: new Set(), buildKitBytes: 0, ...over });

test('the keeper removes beyond the budget, remembers why, and a restarted keeper says why the run is cold', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-keeper-'));
  const log = createLogger('silent');
  try {
    const cacheId = 'sha256:aaaaaaaaaaaa0000';
    const store = new FakeStore(snap({
      images: [1, 2, 3, 4].map((n) => img(n)), dangling: [img(9)],
      untagged: [{ id: cacheId, bytes: 5 * MB, createdMs: 1 }, { id: 'sha256:bbbbbbbbbbbb0000', bytes: 5 * MB, createdMs: 2 }],
      allIds: new Set(['aaaaaaaaaaaa']),
    }));
    const keeper = await ImageKeeper.open(store, { agentId: 'a-x', dataDir: dir, log, imageBudgetBytes: 7 * MB, buildCacheBudgetBytes: MB });
    keeper.neededBy(() => new Set([img(1).id]));
    store.events!.made('aaaaaaaaaaaa'); // made by this agent's build; bbbb... was not
    for (const n of [1, 2, 3, 4]) keeper.used(`d${n}`);
    const out = await keeper.collect();
    // d1 is needed (3 MB), d4 is the newest and fits (6 MB); d3, d2 and the dangling one go.
    assert.deepEqual(store.removed.sort(), [img(2).id, img(3).id, img(9).id, cacheId].sort());
    assert.equal(out.imageBytes, 6 * MB);
    assert.equal(out.buildCacheBytes, 0, 'the untagged image this agent did not make is not its cache');
    assert.equal(out.removedCache, 1);
    await keeper.close();

    const again = await ImageKeeper.open(new FakeStore(snap()), { agentId: 'a-x', dataDir: dir, log, imageBudgetBytes: 7 * MB, buildCacheBudgetBytes: MB });
    assert.match(again.coldReason('d2')!, /^cold: its image was removed on \d{4}-\d\d-\d\d \d\d:\d\d UTC to stay within the image budget \(7\.0 MiB; bytenite agent --image-budget SIZE\)$/);
    assert.equal(again.coldReason('d4'), undefined);
    again.used('d2');
    assert.equal(again.coldReason('d2'), undefined, 'built again: warm next time, no reason');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the keeper leaves build cache alone while a build is in progress, and never forces a refused removal', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-keeper-'));
  try {
    const store = new FakeStore(snap({ images: [img(1), img(2)], untagged: [{ id: 'sha256:cccccccccccc', bytes: 5 * MB, createdMs: 1 }] }));
    store.isBuilding = true;
    store.refuse.add(img(1).id);
    const keeper = await ImageKeeper.open(store, { agentId: 'a-x', dataDir: dir, log: createLogger('silent'), imageBudgetBytes: 0, buildCacheBudgetBytes: 0 });
    store.events!.made('cccccccccccc');
    const out = await keeper.collect();
    assert.deepEqual(store.removed, [img(2).id]);
    assert.equal(keeper.coldReason('d1'), undefined, 'still there: not reported removed');
    assert.equal(out.removedCache, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('after a build, the keeper collects once the run\'s container has started; after a failed build, at once', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-keeper-'));
  try {
    const store = new FakeStore(snap({ images: [img(1), img(2)] }));
    await ImageKeeper.open(store, { agentId: 'a-x', dataDir: dir, log: createLogger('silent'), imageBudgetBytes: 3 * MB, buildCacheBudgetBytes: 0 });
    const settle = () => new Promise((r) => setTimeout(r, 20));
    store.events!.buildEnded(true, false);
    await settle();
    assert.equal(store.snapshots, 0, 'not while the container is being started');
    store.events!.containerStarted();
    await settle();
    assert.deepEqual(store.removed, [img(1).id]);
    const before = store.snapshots;
    store.events!.containerStarted(); // a warm start, no build before it: nothing to collect
    await settle();
    assert.equal(store.snapshots, before);
    store.events!.buildEnded(false, false);
    await settle();
    assert.ok(store.snapshots > before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BuildKit\'s cache (the engine\'s, unlabelled) is pruned to what the budget leaves only once this agent builds with BuildKit', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-keeper-'));
  try {
    const store = new FakeStore(snap({ untagged: [{ id: 'sha256:dddddddddddd', bytes: 3 * MB, createdMs: 1 }], allIds: new Set(['dddddddddddd']), buildKitBytes: 50 * MB }));
    const open = () => ImageKeeper.open(store, { agentId: 'a-x', dataDir: dir, log: createLogger('silent'), imageBudgetBytes: MB, buildCacheBudgetBytes: 10 * MB });
    const keeper = await open();
    store.events!.made('dddddddddddd');
    const before = await keeper.collect();
    assert.deepEqual(store.pruned, [], 'a legacy-only agent leaves BuildKit\'s cache alone');
    assert.equal(before.buildCacheBytes, 3 * MB);
    store.events!.buildEnded(true, true);
    await keeper.collect();
    assert.deepEqual(store.pruned, [7 * MB], 'pruned to the 7 MB the kept step image leaves');
    await keeper.close();
    // Remembered across a restart.
    store.pruned = [];
    await (await open()).collect();
    assert.deepEqual(store.pruned, [7 * MB]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('default budgets come from the engine\'s disk, or are fixed and say so', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-keeper-'));
  try {
    const log = createLogger('silent');
    const local = await ImageKeeper.open(new FakeStore(snap(), 100 * 1024 ** 3), { agentId: 'a', dataDir: dir, log });
    assert.equal(local.imageBudgetBytes, 25 * 1024 ** 3);
    assert.equal(local.buildCacheBudgetBytes, 10 * 1024 ** 3);
    assert.equal(local.described.imageBudget, '25.0 GiB (25% of the engine\'s 100.0 GiB disk at /var/lib/docker; --image-budget SIZE sets it)');
    const remote = await ImageKeeper.open(new FakeStore(snap()), { agentId: 'a', dataDir: dir, log, buildCacheBudgetBytes: 1 });
    assert.equal(remote.imageBudgetBytes, 20 * 1024 ** 3);
    assert.equal(remote.buildCacheBudgetBytes, 1);
    assert.match(remote.described.imageBudget, /^20\.0 GiB \(fixed default: the engine's disk is not on this machine/);
    assert.equal(remote.described.buildCacheBudget, '1 B (--build-cache-budget)');
    assert.equal(formatSize(2 * 1024 ** 3), '2.0 GiB');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
