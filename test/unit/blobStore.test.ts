// The agent's content store and the tar it assembles: verified on the way in, bounded with least recently
// used contents evicted first (pinned ones kept), kept apart per tenant, and an assembled archive that reads
// back as the very context the client listed.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BlobMismatchError, BlobStore } from '../../agent/store/blobStore';
import { assembleContext } from '../../agent/context/assembleContext';
import { checkContext } from '../../agent/context/checkContext';
import { listForBuild } from '../../agent/context/packContext';
import { checkManifest, manifestParts, toManifest } from '../../agent/context/manifest';
import { BadContextError } from '../../agent/context/checkContext';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'bytenite-blobs-'));
  dirs.push(d);
  return d;
};
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function put(store: BlobStore, tenant: string, data: Buffer, label = 'f'): Promise<string> {
  const sha = sha256(data);
  const w = await store.receive(tenant, sha, data.length, label);
  await w.write(data.subarray(0, 3));
  await w.write(data.subarray(3));
  await w.finish();
  return sha;
}

describe('BlobStore', () => {
  test('stores a verified content under its sha256, per tenant, and keeps it across a reopen', async () => {
    const dir = tmp();
    const store = await BlobStore.open(dir, 1 << 20);
    const data = randomBytes(1000);
    const sha = await put(store, 'alice', data);
    assert.ok(store.has('alice', sha));
    assert.ok(!store.has('bob', sha), 'another tenant does not have it');
    assert.equal(store.bytes, 1000);
    const again = await BlobStore.open(dir, 1 << 20);
    assert.ok(again.has('alice', sha));
    assert.ok(!again.has('bob', sha));
  });

  test('refuses content that does not hash to its name, and keeps nothing of it', async () => {
    const store = await BlobStore.open(tmp(), 1 << 20);
    const data = randomBytes(100);
    const sha = sha256(data);
    const w = await store.receive('t', sha, 100, 'src/a.txt');
    await w.write(Buffer.alloc(100));
    await assert.rejects(w.finish(), (err: Error) => err instanceof BlobMismatchError && /"src\/a\.txt" does not match its sha256/.test(err.message));
    assert.ok(!store.has('t', sha));
    assert.equal(store.bytes, 0);
  });

  test('a small content that arrived whole is verified and stored at once', async () => {
    const store = await BlobStore.open(tmp(), 1 << 20);
    const data = randomBytes(300);
    store.putWhole('t', sha256(data), data, 'small.txt');
    assert.ok(store.has('t', sha256(data)));
    assert.equal(store.bytes, 300);
    const other = randomBytes(300);
    assert.throws(() => store.putWhole('t', sha256(other), Buffer.alloc(300), 'small.txt'),
      (err: Error) => err instanceof BlobMismatchError && /"small\.txt" does not match its sha256/.test(err.message));
    assert.ok(!store.has('t', sha256(other)));
    assert.equal(store.bytes, 300);
  });

  test('evicts the least recently used contents past its bound, never a pinned one', async () => {
    const store = await BlobStore.open(tmp(), 3000);
    const [a, b, c] = [randomBytes(1000), randomBytes(1000), randomBytes(1000)];
    const sa = await put(store, 't', a);
    const sb = await put(store, 't', b);
    const sc = await put(store, 't', c);
    const release = store.pin('t', [sa]); // a: used last, and pinned
    const sd = await put(store, 't', randomBytes(1000));
    assert.ok(store.has('t', sa), 'pinned (and recently used) stays');
    assert.ok(!store.has('t', sb), 'the least recently used goes');
    assert.ok(store.has('t', sc) && store.has('t', sd));
    assert.ok(!existsSync(store.path('t', sb)), 'its file is removed');
    const se = await put(store, 't', randomBytes(1000));
    assert.ok(store.has('t', sa), 'still pinned');
    assert.ok(!store.has('t', sc));
    release();
    await put(store, 't', randomBytes(1000));
    assert.ok(!store.has('t', sa), 'unpinned, it is the oldest now');
    assert.ok(store.has('t', sd) && store.has('t', se));
    assert.ok(store.bytes <= 3000);
  });
});

describe('assembleContext', () => {
  test('the assembled tar reads back as the listed context (digest, modes, links, a path longer than 100 bytes)', async () => {
    const root = tmp();
    const long = `${'deep/'.repeat(30)}file.txt`;
    const files: Record<string, Buffer> = {
      Dockerfile: Buffer.from('FROM scratch\nCOPY . /\n'), 'a.txt': randomBytes(3000), 'empty': Buffer.alloc(0),
      [long]: Buffer.from('far down\n'), 'same.txt': Buffer.from('x'), 'copy.txt': Buffer.from('x'),
    };
    for (const [p, d] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
      writeFileSync(path.join(root, p), d);
    }
    symlinkSync('a.txt', path.join(root, 'link'));
    const listed = await listForBuild(root, 'Dockerfile', { A: '1' });
    const store = await BlobStore.open(tmp(), 1 << 30);
    for (const e of listed.entries) {
      if (e.type === 'file' && !store.has('t', e.sha256)) await put(store, 't', files[e.path]);
    }
    const manifest = manifestParts(toManifest(listed.entries)).flat();
    const tarPath = path.join(tmp(), 'ctx.tar');
    await pipeline(assembleContext(manifest, { path: (sha) => store.path('t', sha) }), createWriteStream(tarPath));
    const checked = await checkContext(tarPath, 'Dockerfile', { A: '1' });
    assert.equal(checked.digest, listed.digest);
    assert.equal(checked.files, listed.files);
  });

  test('checkManifest refuses what an archive check would refuse, and a digest that does not match', () => {
    const spec = { dockerfile: 'Dockerfile', buildArgs: {}, contextDigest: 'f'.repeat(64) };
    const file = (p: string) => ({ type: 'file' as const, path: p, mode: 0o644, size: 1, sha256: 'a'.repeat(64) });
    assert.throws(() => checkManifest([file('Dockerfile'), file('../x')], spec, 1e9), /not a plain relative path/);
    assert.throws(() => checkManifest([file('Dockerfile'), file('./x')], spec, 1e9), /not a plain relative path/);
    const link = { type: 'symlink' as const, path: 'l', mode: 0o777, linkTarget: '../../etc' };
    assert.throws(() => checkManifest([file('Dockerfile'), link, file('l/passwd')], spec, 1e9), /"l\/passwd" in the context archive lies under "l"/);
    // A link alone may point anywhere: only the digest is wrong here.
    assert.throws(() => checkManifest([file('Dockerfile'), link], spec, 1e9), /does not match the digest/);
    assert.throws(() => checkManifest([file('Dockerfile'), { ...file('e'), size: 0 }], spec, 1e9), /empty but its sha256/);
    assert.throws(() => checkManifest([file('x')], spec, 1e9), /Dockerfile "Dockerfile" is not a file/);
    assert.throws(() => checkManifest([file('Dockerfile'), { ...file('big'), sha256: 'b'.repeat(64), size: 10 }], spec, 5), /at most/);
    assert.throws(() => checkManifest([file('Dockerfile')], spec, 1e9), (e: Error) => e instanceof BadContextError && /does not match the digest/.test(e.message));
  });
});
