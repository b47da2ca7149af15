// The agent through a raw WebSocket client: authentication, versioning, cancel, and bad input of every
// kind the runner core promises to survive, each followed by a good run on the same agent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import * as tar from 'tar';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { DockerEngine } from '../../agent/engine/dockerEngine';
import { RunEvent } from '../../agent/protocol';
import { cleanup, containersOf, eventually, makeContext, RawClient, startTestAgent, TestAgent, tmpDir } from './helpers';

let agent: TestAgent;
let ctxDir: string;
const dirs: string[] = [];

before(async () => {
  agent = await startTestAgent({ maxContextBytes: 64 * 1024 * 1024 });
  ctxDir = makeContext();
  dirs.push(ctxDir, agent.dataDir);
});
after(async () => {
  await agent.close();
  cleanup(...dirs);
});

const HW = { cpus: 0.5, memoryMiB: 64 };
const DIGEST = 'a'.repeat(64);

/** A good run on the same agent: the proof that whatever came before did not hurt it. */
async function goodRun(): Promise<void> {
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  try {
    const logs: string[] = [];
    const run = await startRun(client, {
      contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: ['echo', 'still-serving'],
      onEvent: (_s, e) => { if (e.kind === 'log') logs.push(e.data); },
    });
    const final = await run.done;
    assert.equal(final.kind, 'exited');
    assert.equal(final.exitCode, 0);
    assert.equal(logs.join(''), 'still-serving\n');
  } finally {
    client.close();
  }
}

test('a missing or wrong token is refused with 401 before the WebSocket opens', async () => {
  await assert.rejects(RawClient.open(agent.url, undefined), /401/);
  await assert.rejects(RawClient.open(agent.url, 'not-the-token'), /401/);
  await assert.rejects(AgentClient.connect(agent.url, { token: 'nope' }), /refused the token \(401\)/);
});

test('hello first; an incompatible protocol version gets a clear error', async () => {
  const c = await RawClient.open(agent.url, agent.token);
  c.send({ type: 'run.list', id: 'early' });
  const early = await c.reply('early');
  assert.equal(early.type === 'error' && early.code, 'hello_required');
  c.send({ type: 'hello', id: 'v9', protocol: 9, client: 'future-client/9' });
  const v9 = await c.reply('v9');
  assert.equal(v9.type, 'error');
  assert.ok(v9.type === 'error' && v9.code === 'incompatible_version' && /protocol 1/.test(v9.message) && /speaks 9/.test(v9.message));
  c.send({ type: 'hello', id: 'v1', protocol: 1, client: 'raw-test' });
  const v1 = await c.reply('v1');
  assert.equal(v1.type, 'hello');
  assert.ok(v1.type === 'hello' && v1.capabilities.includes('warm-start'));
  c.close();
});

test('malformed JSON, unknown types and wrong fields each get an error naming the problem; the connection stays usable', async () => {
  const c = await RawClient.ready(agent);
  c.send('{not json');
  const badJson = await c.waitFor((m) => m.type === 'error' && m.code === 'bad_json');
  assert.match(badJson.type === 'error' ? badJson.message : '', /not valid JSON/);

  c.send({ type: 'run.explode', id: 'u1' });
  const unknown = await c.reply('u1');
  assert.ok(unknown.type === 'error' && unknown.code === 'bad_message' && /type/.test(unknown.message));

  c.send({ type: 'run.create', id: 'w1', spec: { dockerfile: 'Dockerfile', contextDigest: DIGEST, contextBytes: 'many', hardware: { cpus: -1, memoryMiB: 64 } } });
  const wrong = await c.reply('w1');
  assert.ok(wrong.type === 'error' && wrong.code === 'bad_message');
  assert.match(wrong.type === 'error' ? wrong.message : '', /spec\.contextBytes/);
  assert.match(wrong.type === 'error' ? wrong.message : '', /spec\.hardware\.cpus/);

  c.send({ type: 'run.list', id: 'extra', surprise: true });
  const extra = await c.reply('extra');
  assert.ok(extra.type === 'error' && /surprise/.test(extra.message));

  c.send(JSON.stringify({ type: 'run.list', id: 'big', pad: 'x'.repeat(2 * 1024 * 1024) }));
  const big = await c.waitFor((m) => m.type === 'error' && m.code === 'too_large');
  assert.ok(big);

  c.send({ type: 'run.cancel', id: 'nf', runId: 'r-doesnotexist' });
  const nf = await c.reply('nf');
  assert.ok(nf.type === 'error' && nf.code === 'not_found');

  c.ws.send(Buffer.from([1, 2, 3]));
  await c.waitFor((m) => m.type === 'error' && m.code === 'unexpected_binary');

  c.send({ type: 'run.list', id: 'after' });
  assert.equal((await c.reply('after')).type, 'runs');
  c.close();
  await goodRun();
});

test('a frame over the size limit closes that connection (1009); the agent serves the next one', async () => {
  const c = await RawClient.ready(agent);
  c.ws.send(Buffer.alloc(17 * 1024 * 1024));
  await c.waitFor(() => false, 10_000).catch(() => {});
  assert.equal(c.closeCode, 1009);
  await goodRun();
});

test('bad runs are refused with the reason: Dockerfile outside the context, unknown hardware, oversized context', async () => {
  const c = await RawClient.ready(agent);
  const spec = (over: object) => ({ dockerfile: 'Dockerfile', contextDigest: DIGEST, contextBytes: 1024, hardware: HW, ...over });

  c.send({ type: 'run.create', id: 'p1', spec: spec({ dockerfile: '../Dockerfile' }) });
  const p1 = await c.reply('p1');
  assert.ok(p1.type === 'error' && p1.code === 'bad_dockerfile_path', JSON.stringify(p1));
  c.send({ type: 'run.create', id: 'p2', spec: spec({ dockerfile: '/etc/Dockerfile' }) });
  assert.ok((await c.reply('p2')).type === 'error');

  c.send({ type: 'run.create', id: 'g1', spec: spec({ hardware: { cpus: 1, memoryMiB: 64, gpu: { type: 'a100', count: 1 } } }) });
  const g1 = await c.reply('g1');
  assert.ok(g1.type === 'error' && g1.code === 'hardware_unavailable' && /a100/.test(g1.message), JSON.stringify(g1));
  c.send({ type: 'run.create', id: 'c1', spec: spec({ hardware: { cpus: 999, memoryMiB: 64 } }) });
  const c1 = await c.reply('c1');
  assert.ok(c1.type === 'error' && c1.code === 'hardware_unavailable' && /999/.test(c1.message), JSON.stringify(c1));

  c.send({ type: 'run.create', id: 's1', spec: spec({ contextBytes: 65 * 1024 * 1024 }) });
  const s1 = await c.reply('s1');
  assert.ok(s1.type === 'error' && s1.code === 'bad_context' && /at most 64\.0 MiB/.test(s1.message), JSON.stringify(s1));
  c.close();
  await goodRun();
});

test('a tar whose entries escape the context is refused, and the run fails without building', async () => {
  const dir = tmpDir();
  dirs.push(dir);
  writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
  const tarPath = path.join(dir, 'evil.tar');
  // node-tar keeps `../` only when told to preserve paths: exactly what an attacker would do.
  await tar.c({ cwd: dir, file: tarPath, preservePaths: true }, ['Dockerfile', '../../etc/hostname']).catch(async () => {
    await tar.c({ cwd: dir, file: tarPath, preservePaths: true }, ['Dockerfile', '/etc/hostname']);
  });
  const bytes = (await import('node:fs')).readFileSync(tarPath);
  const c = await RawClient.ready(agent);
  c.send({ type: 'run.create', id: 'e1', spec: { dockerfile: 'Dockerfile', contextDigest: 'e'.repeat(64), contextBytes: bytes.length, hardware: HW } });
  const accepted = await c.reply('e1');
  assert.ok(accepted.type === 'run.accepted' && accepted.upload);
  const runId = accepted.type === 'run.accepted' ? accepted.runId : '';
  c.ws.send(bytes);
  c.send({ type: 'upload.end', id: 'e2', runId, bytes: bytes.length });
  const refused = await c.reply('e2');
  assert.ok(refused.type === 'error' && refused.code === 'bad_context' && /etc\/hostname/.test(refused.message), JSON.stringify(refused));
  const final = await c.final(runId);
  assert.equal(final.kind, 'failed');
  assert.ok(final.kind === 'failed' && final.code === 'upload');
  assert.ok(!c.events(runId).some((e) => e.event.kind === 'building'));
  c.close();
  await goodRun();
});

test('cancel stops a running container, reports cancelled and leaves no container behind', async () => {
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const events: RunEvent[] = [];
  let running!: () => void;
  const isRunning = new Promise<void>((r) => (running = r));
  const run = await startRun(client, {
    contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW,
    command: ['sh', '-c', 'echo started; sleep 60'],
    onEvent: (_s, e) => { events.push(e); if (e.kind === 'log' && e.data.includes('started')) running(); },
  });
  await isRunning;
  // A hot container takes its run's name as the run goes, not before (dockerEngine.ts goHot): the name may land
  // a few milliseconds after the first line.
  await eventually('the container is found by its run while running', 2000, async () => (await containersOf(run.runId)) === 1);
  const t0 = Date.now();
  await client.cancel(run.runId);
  const final = await run.done;
  assert.equal(final.kind, 'cancelled');
  assert.ok(Date.now() - t0 < 10_000, 'stopped within the grace period');
  assert.equal(await containersOf(run.runId), 0, 'no container left');
  client.close();
});

test('a build error fails the run with the engine\'s message and leaves no container', async () => {
  // The engine's words: BuildKit's "exit code: 3", the legacy builder's "returned a non-zero code: 3".
  const dir = makeContext({}, 'RUN exit 3\n', { uniq: true });
  dirs.push(dir);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const run = await startRun(client, { contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, onEvent: () => {} });
  const final = await run.done;
  assert.equal(final.kind, 'failed');
  assert.ok(final.kind === 'failed' && final.code === 'build' && /non-zero code: 3|exit code: 3/.test(final.message), JSON.stringify(final));
  assert.equal(await containersOf(run.runId), 0);
  client.close();
});

test('a timeout stops the run and reports it', async () => {
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const run = await startRun(client, {
    contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: HW, command: ['sleep', '30'], timeoutMs: 1000, onEvent: () => {},
  });
  const final = await run.done;
  assert.equal(final.kind, 'failed');
  assert.ok(final.kind === 'failed' && final.code === 'timeout' && /timeout of 1 s/.test(final.message));
  assert.equal(await containersOf(run.runId), 0);
  client.close();
});

test('no reachable Docker Engine: a clear error that says how to start one', async () => {
  const lonely = await startTestAgent({ engine: new DockerEngine(new Docker({ socketPath: '/nonexistent/docker.sock' })) });
  dirs.push(lonely.dataDir);
  try {
    const c = await RawClient.ready(lonely);
    c.send({ type: 'run.create', id: 'n1', spec: { dockerfile: 'Dockerfile', contextDigest: DIGEST, contextBytes: 10, hardware: HW } });
    const r = await c.reply('n1');
    assert.ok(r.type === 'error' && r.code === 'engine_unavailable', JSON.stringify(r));
    assert.match(r.type === 'error' ? r.message : '', /no Docker Engine answers.*dockerd/s);
    c.close();
  } finally {
    await lonely.close();
  }
});

test('runs beyond the free capacity wait in the queue with their position', async () => {
  const catalog = await (await AgentClient.connect(agent.url, { token: agent.token })).hardware();
  const all = { cpus: catalog.host.cpus, memoryMiB: 64 };
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const firstEvents: RunEvent[] = [];
  let firstRunning!: () => void;
  const started = new Promise<void>((r) => (firstRunning = r));
  const first = await startRun(client, {
    contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: all, command: ['sh', '-c', 'echo go; sleep 2'],
    onEvent: (_s, e) => { firstEvents.push(e); if (e.kind === 'log') firstRunning(); },
  });
  await started;
  const secondEvents: RunEvent[] = [];
  const second = await startRun(client, {
    contextDir: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile'), hardware: all, command: ['echo', 'second'],
    onEvent: (_s, e) => secondEvents.push(e),
  });
  const [f1, f2] = await Promise.all([first.done, second.done]);
  assert.equal(f1.kind, 'exited');
  assert.equal(f2.kind, 'exited');
  const queued = secondEvents.find((e) => e.kind === 'queued');
  assert.ok(queued && queued.kind === 'queued' && queued.position === 1, 'the second run was queued at position 1');
  assert.ok(f2.phases.queuedMs > 500, `it waited for the first (${f2.phases.queuedMs} ms)`);
  client.close();
});
