// The journal read a batch at a time (what feeds a client that is behind), and the hold that keeps a
// behind client's events from being rotated away.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JournalEntry, PastRunEvents, RunEventFile } from '../../agent/store/runJournal';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function runDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-journal-'));
  dirs.push(dir);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const entry = (seq: number): JournalEntry => ({ seq, at: 0, event: { kind: 'log', stream: 'stdout', time: '', data: `${seq} `.padEnd(500, 'x') + '\n' } });

/** Every entry after `afterSeq`, read in batches of about `maxBytes`. */
function readInBatches(r: { readAfter(a: number, m: number): JournalEntry[] }, afterSeq: number, maxBytes: number): { seqs: number[]; batches: number } {
  const seqs: number[] = [];
  let batches = 0;
  for (let after = afterSeq; ; batches++) {
    const batch = r.readAfter(after, maxBytes);
    if (batch.length === 0) return { seqs, batches };
    assert.ok(batch.length <= Math.ceil(maxBytes / 500) + 1, `a batch of ${batch.length} entries is over ${maxBytes} bytes`);
    seqs.push(...batch.map((e) => e.seq));
    after = batch.at(-1)!.seq;
  }
}

test('batches read every entry after a seq once, in order, across the older and the current segment', () => {
  const dir = runDir();
  const file = new RunEventFile(dir, 200_000);
  for (let seq = 1; seq <= 1000; seq++) file.append(entry(seq));
  const oldest = file.read(0)[0].seq; // what the rotation kept
  assert.ok(oldest > 1, 'the journal rotated');
  for (const from of [0, oldest, 500, 999, 1000]) {
    const { seqs } = readInBatches(file, from, 20_000);
    const first = Math.max(from + 1, oldest);
    assert.deepEqual(seqs, Array.from({ length: 1001 - first }, (_, i) => first + i), `after ${from}`);
  }
  file.close();
  // A finished run read back after a restart (no index yet) gives the same.
  const past = new PastRunEvents(dir);
  assert.deepEqual(readInBatches(past, 600, 30_000).seqs, Array.from({ length: 400 }, (_, i) => 601 + i));
});

test('a holder that is behind keeps its events from being rotated away until it releases them', () => {
  const dir = runDir();
  const file = new RunEventFile(dir, 100_000);
  const holder = { seq: 0 };
  const release = file.hold(holder);
  for (let seq = 1; seq <= 1000; seq++) file.append(entry(seq));
  assert.equal(file.read(0)[0].seq, 1, 'nothing the holder needs was rotated away');
  holder.seq = 1000;
  release();
  for (let seq = 1001; seq <= 1400; seq++) file.append(entry(seq));
  const oldest = file.read(0)[0].seq;
  assert.ok(oldest > 1, 'rotation goes on once nobody needs the old events');
  assert.deepEqual(readInBatches(file, 0, 50_000).seqs, Array.from({ length: 1401 - oldest }, (_, i) => oldest + i));
  file.close();
});
