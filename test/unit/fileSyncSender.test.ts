// The DiffCopy sender against a small receiver that follows fsutil's rules as the engine applies them:
// entries in walk order (UTF-8 bytes, a folder before its children), IDs by STAT index, REQ only for
// files whose metadata differs from the kept copy, DATA until an empty one, FIN both ways. Packets go
// through the protobuf encoding on the way, as on the wire.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { ManifestEntry } from '../../agent/protocol';
import { FileSyncSender, type FileSource } from '../../agent/build/fileSyncSender';
import { PacketCodec, PacketType, GoMode, type Packet, type Stat } from '../../agent/build/protos';
import { syncEntries, walkOrderKey, type SyncFilter } from '../../agent/build/syncEntries';

const store = mkdtempSync(path.join(os.tmpdir(), 'bytenite-sync-test-'));
after(() => rmSync(store, { recursive: true, force: true }));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const files: FileSource = { path: (s) => path.join(store, s) };

/** A manifest from `path: content` (a path ending in `/` is a folder, `-> x` a link to x). */
function manifest(tree: Record<string, string>, mtime = 1_700_000_000): ManifestEntry[] {
  return Object.entries(tree).map(([p, c]): ManifestEntry => {
    if (p.endsWith('/')) return { type: 'dir', path: p.slice(0, -1), mode: 0o755, mtime };
    if (c.startsWith('-> ')) return { type: 'symlink', path: p, mode: 0o777, linkTarget: c.slice(3), mtime };
    writeFileSync(path.join(store, sha(c)), c);
    return { type: 'file', path: p, mode: 0o644, size: Buffer.byteLength(c), sha256: sha(c), mtime };
  });
}

interface Kept { stat: Stat; data?: Buffer }

/** fsutil's receiving side, reduced to the rules the engine enforces and its metadata-only diff. */
class FakeReceiver {
  copy = new Map<string, Kept>();
  requested: string[] = [];

  async sync(entries: ManifestEntry[], filter: SyncFilter = {}, source: FileSource = files): Promise<void> {
    const list = syncEntries(entries, '', filter);
    const received: Kept[] = [];
    const pending = new Map<number, Buffer[]>();
    const asked = new Set<number>();
    let listEnded = false;
    let finSent = false;
    let last: Buffer | undefined;
    const dirs = new Set<string>();
    this.requested = [];
    let resolveDone!: () => void;
    let rejectDone!: (e: Error) => void;
    const done = new Promise<void>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
    const toSender = (p: Packet) => setImmediate(() => sender.receive(PacketCodec.decode(PacketCodec.encode(p))));
    const maybeFin = () => {
      if (listEnded && !finSent && [...asked].every((id) => !pending.has(id))) {
        finSent = true;
        toSender({ type: PacketType.FIN });
      }
    };
    const onPacket = (p: Packet) => {
      try {
        if (p.type === PacketType.STAT) {
          if (!p.stat) {
            listEnded = true;
            return maybeFin();
          }
          const st = p.stat;
          const key = walkOrderKey(st.path);
          if (last && Buffer.compare(last, key) >= 0) throw new Error(`changes out of order: ${st.path}`);
          last = key;
          const parent = path.posix.dirname(st.path);
          if (parent !== '.' && !dirs.has(parent)) throw new Error(`${st.path} before its folder`);
          if (st.mode & GoMode.dir) dirs.add(st.path);
          const id = received.length;
          received.push({ stat: st });
          const old = this.copy.get(st.path);
          const regular = !(st.mode & (GoMode.dir | GoMode.symlink));
          const same = old && ['size', 'modTime', 'mode', 'uid', 'gid', 'linkname'].every((k) => String(old.stat[k as keyof Stat] ?? '') === String(st[k as keyof Stat] ?? ''));
          if (regular && !same) {
            asked.add(id);
            pending.set(id, []);
            this.requested.push(st.path);
            toSender({ type: PacketType.REQ, ID: id });
          } else if (old) {
            received[id].data = old.data;
          }
          return;
        }
        if (p.type === PacketType.DATA) {
          const id = p.ID ?? 0;
          const chunks = pending.get(id);
          if (!chunks) throw new Error(`DATA for ${id}, which was not asked or is complete`);
          if (!p.data?.length) {
            received[id].data = Buffer.concat(chunks);
            pending.delete(id);
            return maybeFin();
          }
          chunks.push(Buffer.from(p.data));
          return;
        }
        if (p.type === PacketType.FIN) {
          if (!finSent) throw new Error('FIN from the sender before the receiver\'s');
          this.copy = new Map(received.map((k) => [k.stat.path, k]));
          return resolveDone();
        }
        throw new Error(`unexpected packet ${p.type}`);
      } catch (err) {
        rejectDone(err as Error);
      }
    };
    const sender = new FileSyncSender(list, source, async (p) => onPacket(PacketCodec.decode(PacketCodec.encode(p))));
    sender.start();
    await Promise.all([done, sender.done]);
  }

  text(p: string): string | undefined {
    return this.copy.get(p)?.data?.toString('utf8');
  }
}

test('first sync sends every file; a second with one file changed asks only for that one', async () => {
  const r = new FakeReceiver();
  const tree = { 'a.txt': 'one', 'src/': '', 'src/main.py': 'print(1)', 'src/util.py': 'x = 2', 'big.bin': 'b'.repeat(100_000) };
  await r.sync(manifest(tree));
  assert.deepEqual(r.requested.sort(), ['a.txt', 'big.bin', 'src/main.py', 'src/util.py']);
  assert.equal(r.text('big.bin'), 'b'.repeat(100_000));
  await r.sync(manifest({ ...tree, 'src/util.py': 'x = 3' }));
  assert.deepEqual(r.requested, ['src/util.py']);
  assert.equal(r.text('src/util.py'), 'x = 3');
  assert.equal(r.text('src/main.py'), 'print(1)');
});

test('metadata follows content only: a touched file is not sent again, a same-size change is', async () => {
  const r = new FakeReceiver();
  await r.sync(manifest({ 'a.txt': 'aaaa', 'b.txt': 'bbbb' }, 1000));
  await r.sync(manifest({ 'a.txt': 'aaaa', 'b.txt': 'bbbb' }, 2000));
  assert.deepEqual(r.requested, []);
  await r.sync(manifest({ 'a.txt': 'aaaa', 'b.txt': 'cccc' }, 2000));
  assert.deepEqual(r.requested, ['b.txt']);
  assert.equal(r.text('b.txt'), 'cccc');
});

test('entries go in UTF-8 byte order, folders first, and a removed file leaves the copy', async () => {
  const r = new FakeReceiver();
  // JS's sort() would put the emoji (UTF-16 D83D) before U+FF61; UTF-8 puts EF before F0.
  const tree = { '\u{1F600}.txt': 'e', '\uFF61.txt': 'h', 'B': 'b', 'a/': '', 'a/z': 'z', 'a-b': 'ab', 'a.b': 'dot' };
  await r.sync(manifest(tree));
  assert.deepEqual([...r.copy.keys()], ['B', 'a', 'a/z', 'a-b', 'a.b', '\uFF61.txt', '\u{1F600}.txt']);
  const { 'a-b': _gone, ...rest } = tree;
  await r.sync(manifest(rest));
  assert.equal(r.copy.has('a-b'), false);
  assert.deepEqual(r.requested, []);
});

test('a folder missing from the manifest is sent before its files', async () => {
  const r = new FakeReceiver();
  await r.sync(manifest({ 'deep/er/f.txt': 'f' }));
  assert.deepEqual([...r.copy.keys()], ['deep', 'deep/er', 'deep/er/f.txt']);
  assert.ok(r.copy.get('deep')!.stat.mode & GoMode.dir);
});

test('exclude patterns as moby reads them: exceptions, parents, folders sent only for what they bring back', () => {
  const m = manifest({
    'app.py': 'a', 'debug.log': 'd', 'keep.log': 'k', 'build/': '', 'build/tmp/': '', 'build/tmp/x.o': 'o', 'build/out/': '',
    'build/out/app': 'bin', 'docs/': '', 'docs/a.md': 'a', 'docs/sub/': '', 'docs/sub/b.md': 'b', 'x/': '', 'x/y.tmp': 't',
  });
  const sent = (f: SyncFilter) => syncEntries(m, '', f).map((e) => e.stat.path);
  assert.deepEqual(sent({ excludePatterns: ['*.log', '!keep.log', 'build', '!build/out', '**/*.tmp', 'docs/**'] }),
    ['app.py', 'build', 'build/out', 'build/out/app', 'docs', 'keep.log', 'x']); // `docs/**` leaves `docs` itself, as docker does
  // A plain exception below an excluded folder that names nothing: the folder is skipped whole.
  assert.deepEqual(sent({ excludePatterns: ['build', '!build/none'] }), ['app.py', 'debug.log', 'docs', 'docs/a.md', 'docs/sub', 'docs/sub/b.md', 'keep.log', 'x', 'x/y.tmp']);
  assert.deepEqual(sent({ includePatterns: ['docs/sub'] }), ['docs', 'docs/sub', 'docs/sub/b.md']);
  assert.deepEqual(sent({ includePatterns: ['*.py', 'build/out'] }), ['app.py', 'build', 'build/out', 'build/out/app']);
});

test('follow-paths send the named files and what a link among them points to', () => {
  const m = manifest({ 'Dockerfile': 'FROM x', 'real/': '', 'real/conf': 'c', 'link': '-> real', 'other': 'o', 'out': '-> /etc/passwd' });
  const sent = syncEntries(m, '', { followPaths: ['Dockerfile', 'link/conf', 'out'] }).map((e) => e.stat.path);
  assert.deepEqual(sent, ['Dockerfile', 'link', 'out', 'real', 'real/conf']);
  const link = syncEntries(m, '', { followPaths: ['link'] })[0].stat;
  assert.equal(link.linkname, 'real');
  assert.ok(link.mode & GoMode.symlink);
});

test('the dockerfile source is the Dockerfile\'s folder, paths relative to it', () => {
  const m = manifest({ 'services/': '', 'services/api/': '', 'services/api/Dockerfile': 'FROM x', 'services/api/Dockerfile.dockerignore': '*', 'top': 't' });
  const sent = syncEntries(m, 'services/api', { followPaths: ['Dockerfile', 'Dockerfile.dockerignore', '.dockerignore'] }).map((e) => e.stat.path);
  assert.deepEqual(sent, ['Dockerfile', 'Dockerfile.dockerignore']);
});

test('a content still being uploaded is sent once it has arrived', async () => {
  const r = new FakeReceiver();
  const m = manifest({ 'late.txt': 'arrives late' });
  let arrive!: () => void;
  const arrival = new Promise<void>((res) => (arrive = res));
  let asked!: () => void;
  const wasAsked = new Promise<void>((res) => (asked = res));
  let synced = false;
  const source: FileSource = { path: files.path, arrival: () => (asked(), arrival) };
  const sync = r.sync(m, {}, source).then(() => (synced = true));
  await wasAsked;
  assert.equal(synced, false, 'the transfer waits for the content');
  arrive();
  await sync;
  assert.equal(r.text('late.txt'), 'arrives late');
});

test('the engine\'s ERR, or a REQ for what is not a file, ends the transfer with an error', async () => {
  const m = manifest({ 'd/': '', 'd/f': 'f' });
  const list = syncEntries(m, '');
  const a = new FileSyncSender(list, files, async () => {});
  a.start();
  a.receive({ type: PacketType.ERR, data: Buffer.from('disk full') });
  await assert.rejects(a.done, /the engine stopped the file transfer: disk full/);
  const b = new FileSyncSender(list, files, async () => {});
  b.start();
  b.receive({ type: PacketType.REQ, ID: 0 });
  await assert.rejects(b.done, /entry 0, which is not a file/);
});
