// The pure parts of named volumes: the -v flag and the label as users write them, one writer at a time,
// and the refusals a run meets before anything waits (fan-out read-write, an engine without volumes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mergeVolumes, parseVolume, parseVolumeLabel } from '../../agent/volumes/volumeFlag';
import { VolumeLocks } from '../../agent/volumes/volumeLocks';
import { VolumeError, Volumes } from '../../agent/volumes/volumes';
import { readHardwareLabels } from '../../agent/hardware/sizes';
import { RunSpec } from '../../agent/protocol';
import { createLogger } from '../../agent/log';

test('-v NAME:/path[:ro|:rw] reads as docker run -v does', () => {
  assert.deepEqual(parseVolume('cache:/root/.cache'), { name: 'cache', path: '/root/.cache', readOnly: false });
  assert.deepEqual(parseVolume('models:/models:ro'), { name: 'models', path: '/models', readOnly: true });
  assert.deepEqual(parseVolume('a.b_c-1:/x:rw'), { name: 'a.b_c-1', path: '/x', readOnly: false });
  assert.deepEqual(parseVolume('c:/x'), { name: 'c', path: '/x', readOnly: false }, 'a one-letter name, as docker on Linux reads it');
});

test('host paths, anonymous volumes and bad names or paths are refused, saying what to write instead', () => {
  for (const host of ['/etc:/x', './data:/x', '../up:/x', '~/d:/x', 'sub/dir:/x', 'C:\\data:/x']) {
    assert.throws(() => parseVolume(host), /host paths are never mounted: a run gets named volumes of its tenant on the agent \(-v NAME:\/path\[:ro\]\)/, host);
  }
  assert.throws(() => parseVolume('/data'), /host paths are never mounted/);
  assert.throws(() => parseVolume('data'), /-v data: give a volume name and where to mount it, NAME:\/path/);
  assert.throws(() => parseVolume('data:/x:ro:z'), /use NAME:\/path\[:ro\]/);
  assert.throws(() => parseVolume('data:/x:z'), /the mode is ro or rw \(got "z"\)/);
  assert.throws(() => parseVolume('-bad:/x'), /"-bad" is not a volume name/);
  for (const p of ['relative', '/', '/a/../b', '/a/./b', '/a,b']) {
    assert.throws(() => parseVolume(`v:${p}`), /is not a path to mount at/, p);
  }
});

test('LABEL bytenite.volume takes one or several mounts; a flag for the same path replaces the label\'s', () => {
  const labels = readHardwareLabels('FROM x\nLABEL bytenite.cpus=2 bytenite.volume="cache:/c,models:/m:ro"\nLABEL bytenite.volume=w:/w\n');
  assert.deepEqual(labels.problems, []);
  assert.deepEqual(labels.volumes, [
    { name: 'cache', path: '/c', readOnly: false }, { name: 'models', path: '/m', readOnly: true }, { name: 'w', path: '/w', readOnly: false },
  ]);
  assert.deepEqual(mergeVolumes(labels.volumes!, [parseVolume('other:/m')]), [
    { name: 'cache', path: '/c', readOnly: false }, { name: 'w', path: '/w', readOnly: false }, { name: 'other', path: '/m', readOnly: false },
  ]);
  assert.match(readHardwareLabels('LABEL bytenite.volume=/etc:/x\n').problems[0], /^bytenite\.volume: bytenite\.volume=\/etc:\/x: host paths are never mounted/);
  assert.deepEqual(parseVolumeLabel(' a:/a , b:/b:ro '), [{ name: 'a', path: '/a', readOnly: false }, { name: 'b', path: '/b', readOnly: true }]);
});

test('the run spec refuses two volumes at one path and more than 16', () => {
  const base = { dockerfile: 'Dockerfile', contextDigest: 'a'.repeat(64), contextBytes: 0, hardware: { cpus: 1, memoryMiB: 64 } };
  assert.ok(RunSpec.safeParse({ ...base, volumes: [{ name: 'a', path: '/a' }, { name: 'a', path: '/b', readOnly: true }] }).success);
  assert.ok(!RunSpec.safeParse({ ...base, volumes: [{ name: 'a', path: '/a' }, { name: 'b', path: '/a' }] }).success);
  assert.ok(!RunSpec.safeParse({ ...base, volumes: Array.from({ length: 17 }, (_, i) => ({ name: `v${i}`, path: `/v${i}` })) }).success);
  assert.ok(!RunSpec.safeParse({ ...base, volumes: [{ name: 'a', path: '/etc:/x' }] }).success);
});

const ro = (key: string) => ({ key, label: key, readOnly: true });
const rw = (key: string) => ({ key, label: key, readOnly: false });

test('one writer at a time: a second writer waits (told who writes), then gets it when the first lets go', async () => {
  const locks = new VolumeLocks();
  const first = await locks.acquire('r-1', [rw('v')], () => assert.fail('the first writer waits for no one'));
  const reasons: string[] = [];
  let granted = false;
  const second = locks.acquire('r-2', [rw('v')], (r) => reasons.push(r)).then((rel) => { granted = true; return rel; });
  await new Promise((r) => setImmediate(r));
  assert.equal(granted, false);
  assert.deepEqual(reasons, ['waiting for volume v: run r-1 writes it (one writer at a time; :ro mounts share)']);
  assert.deepEqual(locks.holders('v'), [{ runId: 'r-1', readOnly: false }]);
  first();
  (await second)();
  assert.deepEqual(locks.holders('v'), []);
});

test('readers share; a writer waits for them, and readers who come after a waiting writer wait behind it', async () => {
  const locks = new VolumeLocks();
  const a = await locks.acquire('r-a', [ro('v')], () => assert.fail());
  const b = await locks.acquire('r-b', [ro('v')], () => assert.fail());
  const order: string[] = [];
  const wReasons: string[] = [];
  const w = locks.acquire('r-w', [rw('v')], (r) => wReasons.push(r)).then((rel) => { order.push('w'); return rel; });
  const cReasons: string[] = [];
  const c = locks.acquire('r-c', [ro('v')], (r) => cReasons.push(r)).then((rel) => { order.push('c'); return rel; });
  assert.match(wReasons[0], /^waiting for volume v: run r-a reads it, and a read-write mount has the volume to itself$/);
  assert.deepEqual(cReasons, ['waiting for volume v: run r-w is ahead in line for it']);
  a();
  b();
  const wRel = await w;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['w']);
  assert.deepEqual(cReasons.at(-1), 'waiting for volume v: run r-w writes it (one writer at a time; :ro mounts share)');
  wRel();
  (await c)();
  assert.deepEqual(order, ['w', 'c']);
});

test('a cancelled waiter leaves the line; other volumes are not held up; hold() takes at once', async () => {
  const locks = new VolumeLocks();
  const rel = await locks.acquire('r-1', [rw('v')], () => {});
  const ac = new AbortController();
  const waiting = locks.acquire('r-2', [rw('v')], () => {}, ac.signal);
  ac.abort(new Error('cancelled'));
  await assert.rejects(waiting, /cancelled/);
  const other = await locks.acquire('r-3', [rw('other')], () => assert.fail('another volume is free'));
  const held = locks.hold('r-4', [rw('v')]);
  assert.deepEqual(locks.holders('v').map((h) => h.runId), ['r-1', 'r-4']);
  rel();
  held();
  other();
  assert.deepEqual(locks.holders('v'), []);
});

function volumesWithout(engine: string): { volumes: Volumes; done(): void } {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-vol-unit-'));
  const volumes = new Volumes(undefined, engine, { agentId: 'a-12345678', dataDir, outputDir: '/bytenite/out', log: createLogger('silent') });
  return { volumes, done: () => rmSync(dataDir, { recursive: true, force: true }) };
}

const spec = (more: Partial<RunSpec>): RunSpec => RunSpec.parse({
  dockerfile: 'Dockerfile', contextDigest: 'a'.repeat(64), contextBytes: 0, hardware: { cpus: 1, memoryMiB: 64 }, ...more,
});

test('on an engine without volumes a run with a volume is refused; a run without one is not', async () => {
  const { volumes, done } = volumesWithout('bare');
  try {
    await volumes.check(spec({}), 't');
    await assert.rejects(volumes.check(spec({ volumes: [{ name: 'd', path: '/d', readOnly: true }] }), 't'), (err: VolumeError) => {
      assert.equal(err.code, 'volume_refused');
      assert.equal(err.message, 'this agent\'s bare engine cannot mount volumes. Run with -v on an agent with a Docker engine');
      return true;
    });
    assert.deepEqual((await volumes.list('t')).volumes, []);
    await assert.rejects(volumes.remove('t', 'd'), { code: 'not_found', message: 'no volume d on this agent (bytenite volumes lists them)' });
  } finally {
    done();
  }
});

test('different tenants (and agents) get different engine volumes for one name', () => {
  const { volumes, done } = volumesWithout('docker');
  try {
    assert.notEqual(volumes.engineNameOf('alice', 'data'), volumes.engineNameOf('bob', 'data'));
    assert.match(volumes.engineNameOf('alice', 'data'), /^bytenite-vol-[a-f0-9]{32}$/);
  } finally {
    done();
  }
});
