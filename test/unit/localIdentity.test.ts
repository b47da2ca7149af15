// The local fast path's two guards on real folders: the identity check (the agent sees the client's very
// folder, not a copy at the same path, not through a link) and the reads (a file swapped for a link, or
// rewritten since the listing, is refused rather than read).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeLocalContext, seesLocalContext } from '../../agent/context/localIdentity';
import { localSource } from '../../agent/context/localSource';
import { listForBuild } from '../../agent/context/packContext';
import { toManifest } from '../../agent/context/manifest';
import { isLoopback } from '../../agent/network/loopback';

const roots: string[] = [];
after(() => { for (const r of roots) rmSync(r, { recursive: true, force: true }); });

function folder(): string {
  const base = mkdtempSync(path.join(os.tmpdir(), 'bytenite-local-'));
  roots.push(base);
  const dir = path.join(base, 'ctx');
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  writeFileSync(path.join(dir, 'src/a.txt'), 'a');
  writeFileSync(path.join(dir, 'src/b.txt'), 'b');
  // Old enough that the listing's second-granular time cannot meet a rewrite in the same second.
  utimesSync(path.join(dir, 'src/a.txt'), 1_000_000, 1_000_000);
  return dir;
}

async function described(dir: string) {
  const ctx = await listForBuild(dir, 'Dockerfile', {});
  const d = await describeLocalContext(dir, ctx.entries, 'Dockerfile');
  assert.ok(d);
  return { d, ctx };
}

test('the folder itself is seen; a copy at the same path, or the path through a link, is not', async () => {
  const dir = folder();
  const { d } = await described(dir);
  assert.equal(await seesLocalContext(d), true);
  assert.ok(d.entries.some((e) => e.path === 'Dockerfile'), 'the Dockerfile is among the entries described');

  const link = `${dir}-link`;
  symlinkSync(dir, link);
  assert.equal(await seesLocalContext({ ...d, path: link }), false, 'a path with a link in it');

  // What another machine or a container's bind mount of a copy would look like: same path, same times, other inodes.
  renameSync(dir, `${dir}-old`);
  execFileSync('cp', ['-a', `${dir}-old`, dir]);
  assert.equal(await seesLocalContext(d), false, 'a copy at the same path');
});

test('reads: a file rewritten since the listing, or swapped for a link, is refused, never read', async () => {
  const dir = folder();
  const { ctx } = await described(dir);
  const manifest = toManifest(ctx.entries);
  const sha = (p: string) => (manifest.find((e) => e.path === p) as { sha256: string }).sha256;
  const src = localSource(dir, manifest);
  await src.arrival!(sha('src/b.txt'));
  assert.equal(src.path(sha('src/b.txt')), path.join(dir, 'src/b.txt'));

  writeFileSync(path.join(dir, 'src/a.txt'), 'A'); // same size, another second on its clock
  await assert.rejects(Promise.resolve(src.arrival!(sha('src/a.txt'))), /"src\/a.txt" changed while the build context was being sent/);

  const outside = path.join(path.dirname(dir), 'secret.txt');
  writeFileSync(outside, 'b');
  unlinkSync(path.join(dir, 'src/b.txt'));
  symlinkSync(outside, path.join(dir, 'src/b.txt'));
  await assert.rejects(Promise.resolve(src.arrival!(sha('src/b.txt'))), /changed while/);
});

test('a folder on the way swapped for a link is refused', async () => {
  const dir = folder();
  const { ctx } = await described(dir);
  const manifest = toManifest(ctx.entries);
  const elsewhere = path.join(path.dirname(dir), 'elsewhere');
  renameSync(path.join(dir, 'src'), elsewhere);
  symlinkSync(elsewhere, path.join(dir, 'src'));
  const src = localSource(dir, manifest);
  const b = (manifest.find((e) => e.path === 'src/b.txt') as { sha256: string }).sha256;
  await assert.rejects(Promise.resolve(src.arrival!(b)), /changed while/);
});

test('loopback addresses', () => {
  for (const h of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost']) assert.equal(isLoopback(h), true, h);
  for (const h of ['10.0.0.1', '::ffff:10.0.0.1', '192.168.1.1', 'example.com', '::', '0.0.0.0']) assert.equal(isLoopback(h), false, h);
});
