// The agent's output store: archives kept within their budget until fetched, fetched ones removed first when
// room is needed, an archive that does not fit refused (nothing left on disk, the reason naming the flag),
// retention honoured, records read back after a restart, and a reader that follows an archive still being
// written gets every byte.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import * as tar from 'tar';
import { OutputsNotKept, OutputStore } from '../../agent/outputs/outputStore';
import { sendOutputs } from '../../agent/outputs/outputsSender';
import { Run } from '../../agent/runs/run';
import type { AgentMessage, RunSpec } from '../../agent/protocol';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'bytenite-outputs-'));
  dirs.push(d);
  return d;
};

/** A tar of `out/` holding the given files, as the engine's archive API gives an output folder. */
async function archive(files: Record<string, Buffer>): Promise<Buffer> {
  const src = tmp();
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(path.join(src, 'out'));
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(src, 'out', name), data);
  const chunks: Buffer[] = [];
  for await (const c of tar.c({ cwd: src, portable: true }, ['out'])) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const MiB = 1024 * 1024;
const DAY = 86_400_000;

describe('OutputStore', () => {
  test('keeps an archive with its counts and SHA-256, and reads its record back after a reopen', async () => {
    const dir = tmp();
    const store = await OutputStore.open(dir, { budgetBytes: 10 * MiB, retentionMs: DAY });
    const tarBytes = await archive({ 'a.txt': Buffer.from('hello'), 'b.bin': randomBytes(5000) });
    const r = await store.save('r-aaaaaa', 'alice', Readable.from([tarBytes]));
    assert.ok(r);
    assert.deepEqual([r.files, r.bytes, r.tarBytes], [2, 5005, tarBytes.length]);
    assert.equal(r.sha256, createHash('sha256').update(tarBytes).digest('hex'));
    assert.deepEqual(readFileSync(store.tarOf('r-aaaaaa')), tarBytes);
    store.close();
    const again = await OutputStore.open(dir, { budgetBytes: 10 * MiB, retentionMs: DAY });
    assert.equal(again.get('r-aaaaaa')?.sha256, r.sha256);
    assert.deepEqual([...again.held()], ['r-aaaaaa']);
    again.close();
  });

  test('an archive with no file is not kept', async () => {
    const store = await OutputStore.open(tmp(), { budgetBytes: MiB, retentionMs: DAY });
    assert.equal(await store.save('r-bbbbbb', 'default', Readable.from([await archive({})])), undefined);
    assert.deepEqual(readdirSync(store.dir), []);
    store.close();
  });

  test('past the budget: fetched outputs go first (oldest fetch first), unfetched ones are never removed, and a new one that does not fit is refused', async () => {
    const store = await OutputStore.open(tmp(), { budgetBytes: 3 * MiB + 100 * 1024, retentionMs: DAY });
    const one = async (id: string) => store.save(id, 'default', Readable.from([await archive({ f: randomBytes(MiB) })]));
    await one('r-000001');
    await one('r-000002');
    await one('r-000003');
    store.markFetched('r-000002');
    store.markFetched('r-000001');
    await one('r-000004'); // needs room: the first fetched (r-000002) goes
    assert.equal(store.get('r-000002')?.removedAt !== undefined, true);
    assert.match(store.get('r-000002')!.removedWhy!, /room was needed/);
    assert.equal(existsSync(store.tarOf('r-000002')), false);
    assert.equal(store.get('r-000001')?.removedAt, undefined);
    await one('r-000005'); // then r-000001
    assert.ok(store.get('r-000001')?.removedAt);
    // Three unfetched archives fill the budget: the next is refused and leaves nothing behind.
    await assert.rejects(one('r-000006'), (err: Error) => {
      assert.ok(err instanceof OutputsNotKept);
      assert.match(err.message, /outputs budget of 3\.1 MiB/);
      assert.match(err.message, /--outputs-budget SIZE/);
      assert.match(err.message, /3 run\(s\) whose outputs no client has fetched/);
      return true;
    });
    assert.equal(store.get('r-000006'), undefined);
    assert.deepEqual(readdirSync(store.dir).filter((f) => f.startsWith('r-000006')), []);
    for (const id of ['r-000003', 'r-000004', 'r-000005']) assert.ok(existsSync(store.tarOf(id)), id);
    store.close();
  });

  test('retention: archives older than it are removed, and the record says so', async () => {
    const store = await OutputStore.open(tmp(), { budgetBytes: 10 * MiB, retentionMs: 1000 });
    await store.save('r-cccccc', 'default', Readable.from([await archive({ f: Buffer.from('x') })]));
    store.sweep(Date.now() + 500);
    assert.equal(store.get('r-cccccc')?.removedAt, undefined);
    store.sweep(Date.now() + 2000);
    assert.match(store.get('r-cccccc')!.removedWhy!, /retention time of 1 s had passed.*--outputs-retention/);
    assert.equal(existsSync(store.tarOf('r-cccccc')), false);
    store.close();
  });

  test('a download that follows an archive still being written, from an offset, gets exactly the bytes after it', async () => {
    const store = await OutputStore.open(tmp(), { budgetBytes: 100 * MiB, retentionMs: DAY });
    const tarBytes = await archive({ big: randomBytes(5 * MiB), small: Buffer.from('s') });
    const spec = { dockerfile: 'Dockerfile', contextDigest: 'a'.repeat(64), contextBytes: 0, buildArgs: {}, env: {}, secretEnv: [], hardware: { cpus: 1, memoryMiB: 64 } } as RunSpec;
    const run = new Run('r-dddddd', spec, 'img');
    const source = new PassThrough();
    const saving = store.save(run.id, 'default', source);
    // Feed the archive slowly while a reader follows it.
    const feeding = (async () => {
      for (let i = 0; i < tarBytes.length; i += 700_000) {
        source.write(tarBytes.subarray(i, i + 700_000));
        await new Promise((r) => setTimeout(r, 10));
      }
      source.end();
    })();
    const got: Buffer[] = [];
    const msgs: AgentMessage[] = [];
    const offset = 1234;
    await sendOutputs(store, {
      id: 'q', run, offset, wait: true, signal: new AbortController().signal,
      send: (m) => msgs.push(m), sendBinary: async (c) => { got.push(c); },
    });
    await feeding;
    await saving;
    assert.deepEqual(Buffer.concat(got), tarBytes.subarray(offset));
    const end = msgs.at(-1);
    assert.equal(end?.type, 'outputs.end');
    if (end?.type === 'outputs.end') {
      assert.equal(end.bytes, tarBytes.length);
      assert.equal(end.sha256, createHash('sha256').update(tarBytes).digest('hex'));
      assert.equal(end.files, 2);
    }
    store.close();
  });
});
