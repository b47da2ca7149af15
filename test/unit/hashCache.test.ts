// The client's cache of file hashes (agent/context/hashCache.ts): a remembered hash comes back only for the very
// same file state, a freshly written file is never vouched for, and a listing's digest always follows the content.
import assert from 'node:assert/strict';
import type { Stats } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { HashCache } from '../../agent/context/hashCache';
import { listForBuild } from '../../agent/context/packContext';

const SHA = 'a'.repeat(64);
let dir: string;
let previous: string | undefined;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bytenite-hashcache-test-'));
  previous = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
});
after(async () => {
  if (previous === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = previous;
  await rm(dir, { recursive: true, force: true });
});

const MINUTE_AGO = Date.now() - 60_000;

/** An lstat result of a file written a minute ago, with fields overridden. */
function stat(over: Partial<Stats> = {}): Stats {
  const old = MINUTE_AGO;
  return { size: 10, mtimeMs: old, ctimeMs: old, ino: 1, dev: 2, ...over } as Stats;
}

test('a remembered hash comes back for the same file state only, across runs', async () => {
  const root = path.join(dir, 'ctx-a');
  const first = await HashCache.open(root);
  first.remember('app.py', stat(), SHA);
  await first.save();

  const next = await HashCache.open(root);
  assert.equal(next.lookup('app.py', stat()), SHA);
  assert.equal(next.lookup('other.py', stat()), undefined);
  for (const changed of [{ size: 11 }, { mtimeMs: stat().mtimeMs + 1 }, { ctimeMs: stat().ctimeMs + 1 }, { ino: 9 }, { dev: 9 }]) {
    assert.equal(next.lookup('app.py', stat(changed)), undefined, JSON.stringify(changed));
  }
  // Another context folder has its own cache.
  assert.equal((await HashCache.open(path.join(dir, 'ctx-b'))).lookup('app.py', stat()), undefined);
});

test('a file written in the last seconds is not remembered: a second write in the same tick would not move its timestamps', async () => {
  const root = path.join(dir, 'ctx-racy');
  const first = await HashCache.open(root);
  first.remember('fresh.txt', stat({ ctimeMs: Date.now() }), SHA);
  first.remember('old.txt', stat(), SHA);
  await first.save();
  const next = await HashCache.open(root);
  assert.equal(next.lookup('fresh.txt', stat({ ctimeMs: Date.now() })), undefined);
  assert.equal(next.lookup('old.txt', stat()), SHA);
});

test('the digest follows the content from one listing to the next, the same size rewritten included', async () => {
  const ctx = await mkdtemp(path.join(dir, 'ctx-real-'));
  await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\n');
  await writeFile(path.join(ctx, 'data.txt'), 'one');
  const a = await listForBuild(ctx, 'Dockerfile', {});
  assert.equal((await listForBuild(ctx, 'Dockerfile', {})).digest, a.digest);
  await writeFile(path.join(ctx, 'data.txt'), 'two');
  const b = await listForBuild(ctx, 'Dockerfile', {});
  assert.notEqual(b.digest, a.digest);
  assert.equal((await listForBuild(ctx, 'Dockerfile', {})).digest, b.digest);
});
