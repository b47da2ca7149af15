// Load: 200 clients connected at once, 20 following each of 10 runs through run.attach, all getting every
// line; peers that stop answering are found by the heartbeat and dropped; the agent's memory comes back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Socket } from 'node:net';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { cleanup, makeContext, RawClient, startTestAgent } from './helpers';

const RUNS = 10;
const FOLLOWERS_PER_RUN = 20;
const DEAD_PEERS = 50;
const LINES = 200;
const HEARTBEAT_MS = 1500;
const HW = { cpus: 0.1, memoryMiB: 32 };

const dirs: string[] = [];
after(() => cleanup(...dirs));

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;
/** Heap growth allowed while a client reads nothing of an 80 MiB run (what one client may hold back: RunFeed). */
const HELD_BOUND_MIB = 48;
function memory(): { heap: number; rss: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed / MiB, rss: m.rss / MiB };
}

/** Server-side TCP connections of `port` that are established: what the agent really holds. */
function establishedOn(port: number): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && parseInt(f[1].split(':')[1], 16) === port && f[3] === '01') n++;
    }
  }
  return n;
}

async function inBatches<T>(n: number, size: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += size) out.push(...await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, k) => make(i + k))));
  return out;
}

test(`${RUNS * FOLLOWERS_PER_RUN} clients follow ${RUNS} runs at once; ${DEAD_PEERS} dead peers are dropped by the heartbeat; memory stays bounded`,
  { timeout: 120_000 }, async () => {
    const agent = await startTestAgent({ heartbeatMs: HEARTBEAT_MS });
    const dir = makeContext();
    dirs.push(agent.dataDir, dir);
    const owner = await AgentClient.connect(agent.url, { token: agent.token });
    try {
      // Warm the image first, so that the ten runs start together.
      const warm = await startRun(owner, { contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command: ['true'], onEvent: () => {} });
      await warm.done;
      const before = memory();

      // Each run waits for its followers, then prints numbered lines for a few seconds.
      const script = `sleep 2; i=1; while [ $i -le ${LINES} ]; do echo "line $i"; [ $((i % 20)) -eq 0 ] && sleep 0.2; i=$((i+1)); done`;
      const runs = await Promise.all(Array.from({ length: RUNS }, () => startRun(owner, {
        contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command: ['sh', '-c', script], onEvent: () => {},
      })));

      const followers = await inBatches(RUNS * FOLLOWERS_PER_RUN, 50, async (i) => {
        const client = await AgentClient.connect(agent.url, { token: agent.token });
        const lines: string[] = [];
        let resolveFinal!: (e: { kind: string; exitCode: number | null }) => void;
        const final = new Promise<{ kind: string; exitCode: number | null }>((r) => (resolveFinal = r));
        await client.attach(runs[i % RUNS].runId, 0, (_seq, e) => {
          if (e.kind === 'log' && e.stream === 'stdout') lines.push(e.data);
          if (e.kind === 'exited' || e.kind === 'failed' || e.kind === 'cancelled') resolveFinal(e);
        });
        return { client, lines, final };
      });
      // Dead peers: they attach to a run and then stop reading, so they never answer a ping.
      const dead = await inBatches(DEAD_PEERS, 25, async (i) => {
        const c = await RawClient.ready(agent);
        c.send({ type: 'run.attach', id: 'a', runId: runs[i % RUNS].runId, afterSeq: 0 });
        assert.equal((await c.reply('a')).type, 'ok');
        (c.ws as unknown as { _socket: Socket })._socket.pause();
        return c;
      });

      const held = establishedOn(agent.port);
      const peak = memory();

      // Within two intervals (one ping unanswered) the heartbeat has found the dead peers and dropped them.
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 2 + 500));
      const afterHeartbeat = establishedOn(agent.port);

      const finals = await Promise.all(followers.map((f) => f.final));
      const expected = Array.from({ length: LINES }, (_, i) => `line ${i + 1}\n`).join('');
      finals.forEach((f, i) => {
        assert.equal(f.kind, 'exited', `follower ${i}`);
        assert.equal(f.exitCode, 0);
        assert.equal(followers[i].lines.join(''), expected, `follower ${i} got every line, in order`);
      });
      for (const f of followers) f.client.close();
      // The dead peers' sockets, read again, find that the agent has hung up.
      await Promise.all(dead.map(async (c) => {
        (c.ws as unknown as { _socket: Socket })._socket.resume();
        await c.waitFor(() => false, 5000).catch(() => {});
        assert.ok(c.closeCode !== undefined, 'the agent closed the dead peer\'s connection');
      }));
      await new Promise((r) => setTimeout(r, 500));
      const end = memory();
      const left = establishedOn(agent.port);
      console.log(`load: ${followers.length} followers + ${DEAD_PEERS} dead peers + 1 owner held (${held} established), ` +
        `${afterHeartbeat} left after the heartbeat, ${left} at the end; heap ${before.heap.toFixed(1)} -> ${peak.heap.toFixed(1)} (peak) -> ` +
        `${end.heap.toFixed(1)} MiB, rss ${before.rss.toFixed(0)} -> ${peak.rss.toFixed(0)} -> ${end.rss.toFixed(0)} MiB`);

      assert.equal(held, RUNS * FOLLOWERS_PER_RUN + DEAD_PEERS + 1, 'all connections held at once');
      assert.equal(afterHeartbeat, RUNS * FOLLOWERS_PER_RUN + 1, 'dead peers dropped, live ones kept');
      assert.equal(left, 1, 'only the owner is left');
      // The runs' records (their events) stay; what 250 connections cost must be given back.
      assert.ok(end.heap - before.heap < 40, `heap grew by ${(end.heap - before.heap).toFixed(1)} MiB`);
    } finally {
      owner.close();
      await agent.close();
    }
  });

test('a client that stops reading a chatty run costs the agent a bounded amount, is not dropped, and gets everything once it reads again', { timeout: 120_000 }, async () => {
  // The default heartbeat (30 s) is far away: nothing drops this peer; the agent feeds it from the journal as it reads.
  const agent = await startTestAgent();
  const dir = makeContext();
  dirs.push(agent.dataDir, dir);
  const owner = await AgentClient.connect(agent.url, { token: agent.token });
  try {
    // More than loopback's socket buffers can absorb (up to 32 MiB received + 4 MiB sent on Linux) plus the agent's bound.
    const MB = 80;
    const before = memory();
    let bytes = 0;
    const run = await startRun(owner, {
      contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: { cpus: 1, memoryMiB: 64 },
      // Paced (4 MiB a burst): the point is the reader that stops, not how fast the engine can drain a burst.
      command: ['sh', '-c', `sleep 1; i=0; while [ $i -lt ${MB / 4} ]; do yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde | head -c ${4 * MiB}; sleep 0.05; i=$((i+1)); done`],
      onEvent: (_s, e) => { if (e.kind === 'log' && e.stream === 'stdout') bytes += e.data.length; },
    });
    const slow = await RawClient.ready(agent);
    slow.send({ type: 'run.attach', id: 'a', runId: run.runId, afterSeq: 0 });
    assert.equal((await slow.reply('a')).type, 'ok');
    (slow.ws as unknown as { _socket: Socket })._socket.pause();
    let peakHeap = 0;
    const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed / MiB)), 50);
    const final = await run.done;
    clearInterval(sampler);
    assert.equal(final.exitCode, 0);
    const held = establishedOn(agent.port);
    (slow.ws as unknown as { _socket: Socket })._socket.resume();
    await slow.waitFor((m) => m.type === 'event' && m.event.kind === 'exited', 60_000);
    const slowBytes = slow.events(run.runId).reduce((n, { event: e }) => n + (e.kind === 'log' && e.stream === 'stdout' ? e.data.length : 0), 0);
    const seqs = slow.events(run.runId).map((e) => e.seq);
    assert.equal(held, 2, 'the client that did not read is still connected');
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'the slow client got every event once, in order');
    assert.equal(slowBytes, MB * MiB, 'the slow client got every byte');
    assert.ok(peakHeap - before.heap < HELD_BOUND_MIB, `the agent held ${(peakHeap - before.heap).toFixed(1)} MiB more for a client that read nothing`);
    const end = memory();
    console.log(`slow reader: ${MB} MiB of logs, ${bytes} bytes reached the reading client; heap ${before.heap.toFixed(1)} -> peak ${peakHeap.toFixed(1)} -> ${end.heap.toFixed(1)} MiB`);
    assert.equal(bytes, MB * MiB, 'the reading client got every byte');
  } finally {
    owner.close();
    await agent.close();
  }
});
