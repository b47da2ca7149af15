// RunFeed: a client that does not read holds the agent to a bounded amount, and gets every event once, in
// order, when it reads again; several runs fed on one connection share the bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Run } from '../../agent/runs/run';
import { RunFeed, FeedSink } from '../../agent/runs/runFeed';
import type { RunEvent, RunSpec } from '../../agent/protocol';

const HIGH = 64 * 1024;
const BATCH = 16 * 1024;
const LINE = 'x'.repeat(999) + '\n';

const spec = { dockerfile: 'Dockerfile', contextDigest: 'sha256:0', contextBytes: 0, hardware: { cpus: 1, memoryMiB: 64 } } as unknown as RunSpec;

/** A connection that holds what is sent until the test reads it; `sent` callbacks fire once read. */
class Connection {
  queue: Array<{ runId: string; seq: number; bytes: number; sent?: (err?: Error) => void }> = [];
  got = new Map<string, number[]>();
  peak = 0;
  buffered(): number {
    return this.queue.reduce((n, m) => n + m.bytes, 0);
  }
  /** What one run's feed sends through. */
  sink(runId: string): FeedSink {
    return {
      buffered: () => this.buffered(),
      open: () => true,
      send: (seq, event, json, sent) => {
        this.queue.push({ runId, seq, bytes: (json ?? JSON.stringify(event)).length, sent });
        this.peak = Math.max(this.peak, this.buffered());
      },
    };
  }
  /** Reads everything waiting (and what the feeds send meanwhile), letting their timers run. */
  async readAll(): Promise<void> {
    for (let idle = 0; idle < 5; ) {
      const m = this.queue.shift();
      if (!m) {
        idle++;
        await new Promise((r) => setTimeout(r, 15));
        continue;
      }
      idle = 0;
      const list = this.got.get(m.runId) ?? [];
      list.push(m.seq);
      this.got.set(m.runId, list);
      m.sent?.();
    }
  }
}

const log = (): RunEvent => ({ kind: 'log', stream: 'stdout', time: '', data: LINE });
const exited = { kind: 'exited', exitCode: 0 } as unknown as RunEvent;
const seqs = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test('a client that reads nothing while a run prints holds the agent to a bound, then gets every event once, in order', async () => {
  const run = new Run('r-1', spec, 'image');
  const conn = new Connection();
  const feed = new RunFeed(run, conn.sink(run.id), 0, HIGH, BATCH);
  for (let i = 0; i < 2000; i++) run.emit(log()); // 2 MB, none of it read
  run.emit(exited);
  assert.ok(conn.peak <= HIGH + 2 * 1100, `held ${conn.peak} bytes for a client that read nothing`);
  await conn.readAll();
  assert.deepEqual(conn.got.get(run.id), seqs(2001));
  assert.ok(conn.peak <= HIGH + BATCH + 2 * 1100, `held ${conn.peak} bytes while it caught up`);
  feed.stop();
});

test('runs fed on one connection from their start share its bound, and each gets every event once, in order', async () => {
  const runs = ['r-a', 'r-b', 'r-c'].map((id) => new Run(id, spec, 'image'));
  for (const run of runs) {
    for (let i = 0; i < 500; i++) run.emit(log());
    run.emit(exited);
  }
  const conn = new Connection();
  // A bound under one batch: three feeds that each sent a batch regardless would hold three.
  const high = BATCH / 2;
  const feeds = runs.map((run) => new RunFeed(run, conn.sink(run.id), 0, high, BATCH));
  await conn.readAll();
  for (const run of runs) assert.deepEqual(conn.got.get(run.id), seqs(501), run.id);
  assert.ok(conn.peak <= high + BATCH + 2 * 1100, `held ${conn.peak} bytes for three runs`);
  feeds.forEach((f) => f.stop());
});
