// Nothing lost: a run's events survive dropped connections, an agent SIGKILLed mid-run (a real agent
// process, started again on the same data folder), and a Docker Engine that goes away and comes back.
// Each test makes the fault happen for real and checks every numbered line arrived once, in order.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import Docker from 'dockerode';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { DockerEngine } from '../../agent/engine/dockerEngine';
import { FinalEvent, RunEvent, RunSpec, isFinal } from '../../agent/protocol';
import { RunJournal } from '../../agent/store/runJournal';
import { AgentProcess, cleanup, containersOf, docker, freePort, jsonEvents, makeContext, runCli, spawnAgent, startTestAgent, stopAgent, tmpDir } from './helpers';

const dirs: string[] = [];
after(() => cleanup(...dirs));
const HW = { cpus: 0.5, memoryMiB: 64 };
const ctxDir = makeContext();
dirs.push(ctxDir);

/** A shell loop printing `line 1`..`line N`, one every `sleep` seconds. */
function numbered(n: number, sleep: string, exit = 0): string[] {
  return ['sh', '-c', `i=1; while [ $i -le ${n} ]; do echo "line $i"; i=$((i+1)); sleep ${sleep}; done; exit ${exit}`];
}

/** Everything one client saw of a run, checked for gaps and duplicates as it arrives. */
class Seen {
  seqs: number[] = [];
  stdout = '';
  final?: FinalEvent;
  add(seq: number, e: RunEvent): void {
    this.seqs.push(seq);
    if (e.kind === 'log' && e.stream === 'stdout') this.stdout += e.data;
    if (isFinal(e)) this.final = e;
  }
  get last(): number {
    return this.seqs.at(-1) ?? 0;
  }
  lines(): number {
    return this.stdout.split('\n').filter((l) => l.startsWith('line ')).length;
  }
  check(n: number): void {
    assert.deepEqual(this.seqs, this.seqs.map((_, i) => i + 1), 'sequence numbers 1, 2, 3... with no gap and no duplicate');
    assert.equal(this.stdout, Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join(''), 'every line once, in order');
  }
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Follows a run over connections that can be cut: each attach resumes after the last seq seen. */
async function attachUntil(url: string, token: string, runId: string, seen: Seen, stopWhen: () => boolean): Promise<AgentClient> {
  const client = await AgentClient.connect(url, { token });
  await client.attach(runId, seen.last, (seq, e) => seen.add(seq, e));
  await until(() => stopWhen() || seen.final !== undefined, 60_000, 'events');
  return client;
}

test('detach and resume: cutting the connection 5 times loses and repeats nothing', async () => {
  const agent = await startTestAgent();
  dirs.push(agent.dataDir);
  try {
    const seen = new Seen();
    const first = await AgentClient.connect(agent.url, { token: agent.token });
    const run = await startRun(first, {
      contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: numbered(300, '0.01'),
      onEvent: (seq, e) => seen.add(seq, e),
    });
    await until(() => seen.lines() >= 20, 30_000, 'first lines');
    first.close();
    let cuts = 1;
    while (!seen.final) {
      const target = seen.lines() + 40;
      const c = await attachUntil(agent.url, agent.token, run.runId, seen, () => seen.lines() >= target);
      if (!seen.final) cuts++;
      c.close();
    }
    assert.ok(cuts >= 5, `cut ${cuts} times`);
    seen.check(300);
    assert.equal(seen.final?.kind, 'exited');
  } finally {
    await agent.close();
  }
});

test('past runs and their events are read back from the journal after the agent restarts', async () => {
  const first = await startTestAgent();
  dirs.push(first.dataDir);
  const client = await AgentClient.connect(first.url, { token: first.token });
  const events: Array<{ seq: number; event: RunEvent }> = [];
  const run = await startRun(client, {
    contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW,
    command: numbered(5, '0'), env: { VISIBLE: 'v', HIDDEN: 'hush-value-42' }, secretEnv: ['HIDDEN'],
    onEvent: (seq, event) => events.push({ seq, event }),
  });
  await run.done;
  client.close();
  await first.close();
  assert.doesNotMatch(readFileSync(path.join(first.dataDir, 'runs', run.runId, 'run.json'), 'utf8'), /hush-value-42/, 'no secret value on disk');

  const second = await startTestAgent({ dataDir: first.dataDir });
  try {
    const c2 = await AgentClient.connect(second.url, { token: second.token });
    const listed = (await c2.list()).find((r) => r.runId === run.runId);
    assert.equal(listed?.state, 'exited');
    assert.equal(listed?.lastSeq, events.length);
    assert.equal(listed?.final?.kind, 'exited');
    const replay: Array<{ seq: number; event: RunEvent }> = [];
    await c2.attach(run.runId, 0, (seq, event) => replay.push({ seq, event }));
    await until(() => replay.length === events.length, 5000, 'replay');
    assert.deepEqual(replay, events);
    const tail: number[] = [];
    await c2.attach(run.runId, events.length - 2, (seq) => tail.push(seq));
    await until(() => tail.length === 2, 5000, 'tail');
    assert.deepEqual(tail, [events.length - 1, events.length]);
    c2.close();
  } finally {
    await second.close();
  }
});

test('the journal keeps to its size cap: the oldest finished runs go first', async () => {
  // One such run journals about 7 KB (record, ~40 log events with their cursors, stats, cost): the cap holds
  // one or two of them, never all four.
  // No hot pool: a hot run ends sooner, with fewer stats events, and would journal less than the cap assumes.
  const agent = await startTestAgent({ journal: { maxBytes: 14_000, segmentBytes: 4000 }, hotPool: 0 });
  dirs.push(agent.dataDir);
  try {
    const client = await AgentClient.connect(agent.url, { token: agent.token });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await startRun(client, {
        contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: numbered(40, '0'), onEvent: () => {},
      });
      await r.done;
      ids.push(r.runId);
    }
    const listed = (await client.list()).map((r) => r.runId);
    assert.ok(listed.includes(ids[3]), 'the newest run is kept');
    assert.ok(!listed.includes(ids[0]), 'the oldest run was pruned');
    client.close();
  } finally {
    await agent.close();
  }
});

// ---- a real agent process, SIGKILLed and started again ----

/** A data folder with a token file and a free port: what an agent process needs to be started, killed and started again. */
async function agentHome(name: string): Promise<{ dataDir: string; tokenFile: string; token: string; port: number }> {
  const dataDir = tmpDir(`bytenite-${name}-`);
  dirs.push(dataDir);
  const token = `${name}-test-token-${randomBytes(8).toString('hex')}`;
  const tokenFile = path.join(dataDir, 'token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  return { dataDir, tokenFile, token, port: await freePort() };
}

function sigkill(p: AgentProcess): Promise<void> {
  return new Promise((resolve) => {
    p.child.once('exit', () => resolve());
    p.child.kill('SIGKILL');
  });
}

test('SIGKILL the agent 3 times mid-run: it reattaches, the logs continue with no gap and no duplicate', async () => {
  const { dataDir, tokenFile, token, port } = await agentHome('kill');
  let agent = await spawnAgent(dataDir, tokenFile, port);
  try {
    const seen = new Seen();
    const c = await AgentClient.connect(agent.url, { token });
    const run = await startRun(c, {
      contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: numbered(250, '0.02', 3),
      onEvent: (seq, e) => seen.add(seq, e),
    });
    // A second run that ends while the agent is down: its exit (and its last output) is recorded on restart.
    const shortSeen = new Seen();
    const short = await startRun(c, {
      contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW,
      command: ['sh', '-c', 'echo "line 1"; sleep 1; echo "line 2"; exit 4'], onEvent: (seq, e) => shortSeen.add(seq, e),
    });
    // A leftover of this agent (no run of its own) and a container of another agent on the same engine.
    const agentId = readFileSync(path.join(dataDir, 'agent-id'), 'utf8').trim();
    const image = (await docker.listImages({ filters: { label: ['io.bytenite.managed=1'] } }))[0].Id;
    const leftover = await docker.createContainer({ Image: image, Cmd: ['true'], Labels: { 'io.bytenite.managed': '1', 'io.bytenite.agent': agentId, 'io.bytenite.run': 'r-leftover000' } });
    const foreign = await docker.createContainer({ Image: image, Cmd: ['true'], Labels: { 'io.bytenite.managed': '1', 'io.bytenite.agent': 'a-someoneelse00', 'io.bytenite.run': 'r-foreign0000' } });
    try {
      await until(() => seen.lines() >= 15, 30_000, 'first lines');
      let restarts = 0;
      for (; restarts < 3; restarts++) {
        await sigkill(agent);
        await new Promise((r) => setTimeout(r, restarts === 0 ? 1500 : 600)); // the container goes on printing
        agent = await spawnAgent(dataDir, tokenFile, port);
        const target = seen.lines() + 30;
        const again = await attachUntil(agent.url, token, run.runId, seen, () => seen.lines() >= target);
        again.close();
        if (seen.final) break;
      }
      assert.equal(restarts, 3, 'the run outlived 3 restarts');
      const last = await attachUntil(agent.url, token, run.runId, seen, () => false);
      seen.check(250);
      assert.equal(seen.final?.kind, 'exited');
      assert.equal(seen.final?.exitCode, 3);

      const sc = await attachUntil(agent.url, token, short.runId, shortSeen, () => false);
      assert.equal(shortSeen.final?.kind, 'exited', 'the exit that happened while the agent was down is recorded');
      assert.equal(shortSeen.final?.exitCode, 4);
      shortSeen.check(2);
      sc.close();

      await until(async () => (await containersOf(run.runId)) + (await containersOf(short.runId)) === 0, 10_000, 'runs\' containers removed');
      await assert.rejects(leftover.inspect(), /no such container/i, 'this agent\'s leftover is removed');
      assert.ok(await foreign.inspect(), 'another agent\'s container is left alone');
      const runs = await last.list();
      assert.ok(runs.every((r) => r.state !== 'running'), 'no run stays running');
      last.close();
    } finally {
      await foreign.remove({ force: true }).catch(() => {});
      await leftover.remove({ force: true }).catch(() => {});
    }
    c.close();
  } finally {
    await stopAgent(agent);
  }
});

test('a run taken up after a SIGKILL is stopped with its agent (SIGTERM), not left running', async () => {
  const { dataDir, tokenFile, token, port } = await agentHome('adopted');
  let agent = await spawnAgent(dataDir, tokenFile, port);
  let runId = '';
  try {
    const c = await AgentClient.connect(agent.url, { token });
    const seen = new Seen();
    const run = await startRun(c, {
      contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: numbered(100_000, '0.1'),
      onEvent: (seq, e) => seen.add(seq, e),
    });
    runId = run.runId;
    await until(() => seen.lines() >= 3, 60_000, 'first lines');
    c.close();
    await sigkill(agent);
    agent = await spawnAgent(dataDir, tokenFile, port);
    // Taken up: its lines continue through the new agent.
    const target = seen.lines() + 5;
    (await attachUntil(agent.url, token, runId, seen, () => seen.lines() >= target)).close();
    assert.equal(await containersOf(runId), 1);
    // At once, while the new agent may still be writing its start-up lines: it must not die without stopping it.
    const t0 = Date.now();
    await stopAgent(agent);
    assert.ok(Date.now() - t0 < 14_000, `the agent stopped on SIGTERM by itself (${Date.now() - t0} ms), not by the test's SIGKILL`);
    assert.equal(await containersOf(runId), 0, 'the taken-up run\'s container went with the agent');
  } finally {
    await stopAgent(agent);
    if (runId && (await containersOf(runId))) await docker.listContainers({ all: true, filters: { label: [`io.bytenite.run=${runId}`] } })
      .then((cs) => Promise.all(cs.map((x) => docker.getContainer(x.Id).remove({ force: true }))));
  }
});

test('an agent stopped while it cleans up after a run keeps the run\'s outcome: it is reported, not lost', async () => {
  // The state a SIGKILL leaves between "container exited" and "final event journaled": the outcome was
  // kept, the container is already removed. (The window is short; the 3-restart test above hit it in CI.)
  const dataDir = tmpDir('bytenite-settled-');
  dirs.push(dataDir);
  const journal = new RunJournal(path.join(dataDir, 'runs'));
  const id = 'r-5e771ed0000000a1';
  const spec = RunSpec.parse({ dockerfile: 'Dockerfile', contextDigest: 'a'.repeat(64), contextBytes: 1, hardware: HW });
  const events = journal.open({ id, agentId: 'a-gone00000000000', createdAt: new Date().toISOString(), spec, warmImage: 'sha256:' + 'b'.repeat(64) });
  events.append({ seq: 1, at: Date.now(), event: { kind: 'running', startedAt: new Date().toISOString() } });
  events.append({ seq: 2, at: Date.now(), event: { kind: 'log', stream: 'stdout', time: new Date().toISOString(), data: 'done\n' } });
  events.close();
  const final: FinalEvent = {
    kind: 'exited', exitCode: 4, oomKilled: false, durationMs: 1200, start: 'warm', steps: 0, cachedSteps: 0,
    cost: { currency: 'USD', total: 0.00001, vcpu: 0.00001, memory: 0, gpu: 0, billedMs: 1200, reference: [] },
    phases: { queuedMs: 0, uploadMs: 0, buildMs: 0, startMs: 300, runMs: 1200 }, outputs: { files: 0, bytes: 0 },
  };
  journal.settle(id, final);
  const agent = await startTestAgent({ dataDir });
  try {
    const seen = new Seen();
    const c = await attachUntil(agent.url, agent.token, id, seen, () => false);
    assert.equal(seen.final?.kind, 'exited');
    assert.equal(seen.final?.exitCode, 4);
    assert.equal(seen.stdout, 'done\n');
    c.close();
  } finally {
    await agent.close();
  }
});

test('bytenite attach follows a run from the terminal through an agent restart, like bytenite run', async () => {
  const { dataDir, tokenFile, token, port } = await agentHome('attach');
  let agent = await spawnAgent(dataDir, tokenFile, port);
  try {
    const c = await AgentClient.connect(agent.url, { token });
    let lines = 0;
    const run = await startRun(c, {
      contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: numbered(150, '0.02', 5),
      onEvent: (_s, e) => { if (e.kind === 'log') lines++; },
    });
    await until(() => lines >= 10, 30_000, 'first lines');
    c.close();
    const following = runCli(['attach', run.runId, '--agent', agent.url, '--token-file', tokenFile]);
    await new Promise((r) => setTimeout(r, 800));
    await sigkill(agent);
    await new Promise((r) => setTimeout(r, 500));
    agent = await spawnAgent(dataDir, tokenFile, port);
    const r = await following;
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stdout, Array.from({ length: 150 }, (_, i) => `line ${i + 1}\n`).join(''));
    assert.match(r.stderr, /reconnecting/);
    assert.match(r.stderr, /exited 5/);

    const json = await runCli(['attach', run.runId, '--json', '--agent', agent.url, '--token-file', tokenFile]);
    assert.equal(json.code, 5, json.stderr);
    const evs = jsonEvents(json.stdout);
    assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i + 1));
    assert.equal(evs.at(-1)?.event.kind, 'exited');

    const missing = await runCli(['attach', 'r-doesnotexist00', '--agent', agent.url, '--token-file', tokenFile]);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /no run r-doesnotexist00/);
  } finally {
    await stopAgent(agent);
  }
});

test('a hot run survives an agent SIGKILL: taken up again by its name, every line once, billed from its own start', async () => {
  const { dataDir, tokenFile, token, port } = await agentHome('hotkill');
  let agent = await spawnAgent(dataDir, tokenFile, port);
  try {
    const agentId = readFileSync(path.join(dataDir, 'agent-id'), 'utf8').trim();
    const command = numbered(60, '0.05', 5);
    const c = await AgentClient.connect(agent.url, { token });
    const first = await startRun(c, { contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command, onEvent: () => {} });
    await first.done;
    const hot = async () => (await docker.listContainers({ filters: { label: [`io.bytenite.agent=${agentId}`, 'io.bytenite.hot=1'] } })).length;
    await until(async () => (await hot()) === 1, 30_000, 'a container started ahead');
    // The container waits a while: a run billed from the container's own start would show it.
    await new Promise((r) => setTimeout(r, 3000));
    const seen = new Seen();
    let start = '';
    const t0 = Date.now();
    const run = await startRun(c, {
      contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command,
      onEvent: (seq, e) => {
        seen.add(seq, e);
        if (e.kind === 'starting') start = e.start;
      },
    });
    await until(() => seen.lines() >= 10, 30_000, 'first lines');
    assert.equal(start, 'hot');
    c.close();
    await sigkill(agent);
    // The container made ahead for the next run loses its agent's attach, reads end of input and stops:
    // a dead agent leaves no container waiting forever.
    const waitingOthers = async () => (await docker.listContainers({ filters: { label: [`io.bytenite.agent=${agentId}`, 'io.bytenite.hot=1'] } }))
      .filter((x) => !x.Names.some((n) => n.includes(run.runId))).length;
    await until(async () => (await waitingOthers()) === 0, 10_000, 'the waiting container to stop with its agent');
    agent = await spawnAgent(dataDir, tokenFile, port);
    const last = await attachUntil(agent.url, token, run.runId, seen, () => false);
    const observedMs = Date.now() - t0;
    seen.check(60);
    assert.equal(seen.final?.kind, 'exited');
    assert.equal(seen.final?.exitCode, 5);
    assert.ok(seen.final!.durationMs < observedMs, `billed ${seen.final!.durationMs} ms of a run seen for ${observedMs} ms`);
    last.close();
    await until(async () => (await docker.listContainers({ all: true, filters: { name: [run.runId] } })).length === 0, 10_000, 'the hot run\'s container removed');
  } finally {
    await stopAgent(agent);
  }
});

// ---- the Docker Engine going away ----

/** A unix socket that forwards to the real engine, and that the test can cut and restore. */
class EngineProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  constructor(readonly socketPath: string) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect('/var/run/docker.sock');
      this.sockets.add(client).add(upstream);
      const drop = () => { client.destroy(); upstream.destroy(); this.sockets.delete(client); this.sockets.delete(upstream); };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(this.socketPath, () => r()));
  }

  async cut(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  }
}

test('the engine going away fails runs with a clear reason; the agent serves again when it returns', async () => {
  const dir = tmpDir('bytenite-proxy-');
  dirs.push(dir);
  const proxy = new EngineProxy(path.join(dir, 'docker.sock'));
  await proxy.open();
  const agent = await startTestAgent({ engine: new DockerEngine(new Docker({ socketPath: proxy.socketPath })) });
  dirs.push(agent.dataDir);
  try {
    const client = await AgentClient.connect(agent.url, { token: agent.token });
    for (let round = 1; round <= 2; round++) {
      const seen = new Seen();
      const run = await startRun(client, {
        contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: numbered(2000, '0.02'),
        onEvent: (seq, e) => seen.add(seq, e),
      });
      await until(() => seen.lines() >= 5, 30_000, `first lines (${seen.stdout.length} chars, ${seen.seqs.length} events)`);
      await proxy.cut();
      const final = await run.done;
      assert.equal(final.kind, 'failed');
      assert.equal(final.kind === 'failed' && final.code, 'engine');
      assert.match(final.kind === 'failed' ? final.message : '', /lost the Docker Engine/);
      // Still serving, and saying why a new run cannot start.
      await assert.rejects(startRun(client, {
        contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, onEvent: () => {},
      }), /No Docker Engine answers|no Docker Engine answers/i);
      assert.ok((await client.list()).some((r) => r.runId === run.runId && r.state === 'failed'));

      await proxy.open();
      // The container it could not remove while the engine was away is removed once it is back.
      await until(async () => (await containersOf(run.runId)) === 0, 15_000, 'the failed run\'s container removed');
      const good = new Seen();
      const ok = await startRun(client, {
        contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: numbered(3, '0'),
        onEvent: (seq, e) => good.add(seq, e),
      });
      const okFinal = await ok.done;
      assert.equal(okFinal.kind, 'exited', `round ${round}: serves again: ${JSON.stringify(okFinal)}`);
      good.check(3);
    }
    client.close();
  } finally {
    await agent.close();
    await proxy.cut();
  }
});
