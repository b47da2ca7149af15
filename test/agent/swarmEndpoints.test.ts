// An endpoint on the Swarm engine, on a real two-node Swarm built on this machine (test/agent/swarmCluster.ts),
// through the real `bytenite agent --engine swarm` and real HTTP clients: the token or 401 (nothing started),
// the service's replicas 0 -> 1 on a request and back to 0 after --idle, --max 2 caps them (one task per node,
// each reached through the endpoint's gateway), undeploy removes what the endpoint made. Nothing is skipped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, ROOT, cleanup, makeContext, runCli, stopAgent as stopAgentProcess, tmpDir } from './helpers';
import { endSwarmTest, spawnSwarmAgent, startSwarmCluster, SwarmCluster } from './swarmCluster';
import { AgentClient } from '../../agent/client/agentClient';

let cluster: SwarmCluster;
let agent: ChildProcess;
let base = '';
let url = '';
let tokenFile = '';
let client: AgentClient;
let token = '';
const dirs: string[] = [];
let agentLog = (): string => '';

let dataDir = '';

/** Starts `bytenite agent --engine swarm` on the cluster's manager with the test's data folder, and connects. */
async function startAgent(): Promise<void> {
  const started = await spawnSwarmAgent(cluster, dataDir, CLI, ROOT);
  agent = started.child;
  url = started.url;
  agentLog = started.log;
  base = url.replace(/^ws/, 'http');
  tokenFile = path.join(dataDir, 'token');
  token = readFileSync(tokenFile, 'utf8').trim().split(/\s+/).pop()!;
  client = await AgentClient.connect(url, { token });
}

async function stopAgent(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  client.close();
  const exited = new Promise((r) => agent.once('exit', r));
  agent.kill(signal);
  await exited;
}

before(async () => {
  cluster = await startSwarmCluster();
  console.log(`# Swarm test cluster ready in ${cluster.setupMs} ms`);
  dataDir = tmpDir('bytenite-swarm-ep-agent-');
  dirs.push(dataDir);
  await startAgent();
});

after(async () => {
  client?.close();
  // The agent cancels what still runs (SIGTERM, SIGKILL after 15 s): it must not keep the cluster (and CI) waiting.
  if (agent) await stopAgentProcess({ child: agent, url });
  await endSwarmTest(cluster, () => cleanup(...dirs));
});

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, timeout: 120_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** The endpoint's service on the manager, as Swarm has it. */
async function service(): Promise<{ replicas: number; id: string } | undefined> {
  const list = await cluster.manager.listServices({ filters: { label: ['io.bytenite.endpoint'] } });
  const s = list[0];
  return s && { id: s.ID!, replicas: s.Spec?.Mode?.Replicated?.Replicas ?? -1 };
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    assert.ok(Date.now() < deadline, `${what} within ${ms / 1000} s; agent log: ${agentLog().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('an endpoint on the Swarm: token or 401, replicas 0 -> 1 -> 0 after --idle, --max 2 caps them, undeploy cleans up', async () => {
  const slow = '#!/bin/sh\nsleep 3\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nprintf "slow from %s" "$(hostname)"\n';
  const dir = makeContext({ 'www/index.html': 'hello swarm', 'www/cgi-bin/slow': slow },
    'COPY www /www\nRUN ["chmod", "755", "/www/cgi-bin/slow"]\nCMD ["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]\n', { uniq: true });
  dirs.push(dir);
  const deploy = (name: string) => runCli(['deploy', name, path.join(dir, 'Dockerfile'), '--port', '8000', '--idle', '3s', '--max', '2',
    '--concurrency', '1', '--cpus', '0.5', '--memory', '64m', '--agent', url, '--token-file', tokenFile]);

  // A Swarm with no node that could run a task refuses the deploy with the reason, before a service is made.
  const availability = async (a: 'drain' | 'active') => {
    for (const id of [cluster.managerNodeId, cluster.workerNodeId]) {
      const n = cluster.manager.getNode(id);
      const info = (await n.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
      await n.update({ ...info.Spec, version: info.Version.Index, Availability: a });
    }
  };
  await availability('drain');
  try {
    const r = await deploy('web');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /an endpoint on this Swarm cannot start: the Swarm has no node that is ready and active/);
    assert.equal(await service(), undefined, 'no service made');
  } finally {
    await availability('active');
  }

  const r = await deploy('web');
  assert.equal(r.code, 0, r.stderr + agentLog().slice(-2000));
  assert.equal(r.stdout.trim(), `${base}/e/web/`);
  const svc = await until('the endpoint\'s service exists', 30_000, service);
  assert.equal(svc.replicas, 0, 'deployed at zero');

  const refused = await get(`${base}/e/web/index.html`);
  assert.equal(refused.status, 401);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await service())!.replicas, 0, 'a request without the token starts nothing');

  const t0 = Date.now();
  const ok = await get(`${base}/e/web/index.html`, { authorization: `Bearer ${token}` });
  assert.equal(ok.status, 200, ok.body + agentLog().slice(-2000));
  assert.equal(ok.body, 'hello swarm');
  const woke = (await client.endpointRequests('web', { limit: 10 })).find((q) => q.wake);
  console.log(`# wake from 0 replicas to the first response: ${Date.now() - t0} ms (held ${woke?.heldMs} ms: ` +
    `task running ${woke?.wake?.startMs} ms after the scale-up, its port answered ${woke?.wake?.readyMs} ms later; first byte ${woke?.firstByteMs} ms)`);
  assert.equal((await service())!.replicas, 1, 'one request woke one replica');

  // Four slow requests at concurrency 1: a second replica, never a third.
  let most = 0;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      most = Math.max(most, (await service())!.replicas);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const t1 = Date.now();
  const slowOnes = await Promise.all([0, 1, 2, 3].map(() => get(`${base}/e/web/cgi-bin/slow`, { authorization: `Bearer ${token}` })));
  watching = false;
  await watch;
  for (const r of slowOnes) assert.equal(r.status, 200, r.body);
  const hosts = new Set(slowOnes.map((r) => r.body.replace('slow from ', '')));
  console.log(`# 4 slow (3 s) requests, --max 2 --concurrency 1: ${Date.now() - t1} ms, replicas at most ${most}, answered by ${hosts.size} tasks`);
  assert.equal(most, 2, '--max 2 caps the replicas');
  assert.equal(hosts.size, 2, 'both tasks answered');
  // Swarm spreads the two replicas over the two nodes: the worker's task was reached through the gateway too.
  const tasks = (await cluster.manager.listTasks({ filters: { service: [svc.id], 'desired-state': ['running'] } })) as Array<{ NodeID: string }>;
  assert.deepEqual(new Set(tasks.map((t) => t.NodeID)), new Set([cluster.managerNodeId, cluster.workerNodeId]));

  // Idle for 3 s: back to zero replicas; the next request wakes one again.
  await until('the service went back to 0 replicas after --idle', 40_000, async () => ((await service())!.replicas === 0 ? true : undefined));
  await until('its tasks stopped', 40_000, async () => ((await client.endpoints())[0].instances.length === 0 ? true : undefined));
  const again = await get(`${base}/e/web/index.html`, { authorization: `Bearer ${token}` });
  assert.equal(again.status, 200, again.body);
  assert.equal((await service())!.replicas, 1);

  const gone = await runCli(['undeploy', 'web', '--agent', url, '--token-file', tokenFile]);
  assert.equal(gone.code, 0, gone.stderr);
  await until('undeploy removed the service', 30_000, async () => ((await service()) === undefined ? true : undefined));
  const nets = await until('undeploy removed the network', 30_000, async () => {
    const left = await cluster.manager.listNetworks({ filters: { label: ['io.bytenite.endpoint'] } });
    return left.length === 0 ? left : undefined;
  });
  assert.equal(nets.length, 0);
  await until('undeploy removed the gateway', 30_000, async () => {
    const gw = await cluster.manager.listContainers({ all: true, filters: { label: ['io.bytenite.endpoint'] } });
    return gw.length === 0 ? true : undefined;
  });
});

test('an endpoint on the Swarm across agent restarts: a SIGKILL leaves its task serving, a SIGTERM scales it to 0', async () => {
  const dir = makeContext({ 'www/index.html': 'kept' }, 'COPY www /www\nCMD ["/bin/busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]\n', { uniq: true });
  dirs.push(dir);
  const r = await runCli(['deploy', 'kept', path.join(dir, 'Dockerfile'), '--port', '8000', '--idle', '60s', '--max', '1',
    '--cpus', '0.5', '--memory', '64m', '--agent', url, '--token-file', tokenFile]);
  assert.equal(r.code, 0, r.stderr);
  const call = () => get(`${base}/e/kept/index.html`, { authorization: `Bearer ${token}` });
  assert.deepEqual(await call(), { status: 200, body: 'kept' });
  const [task] = (await client.endpoints()).find((e) => e.name === 'kept')!.instances.map((i) => i.runId);
  assert.ok(task);

  await stopAgent('SIGKILL');
  await startAgent();
  assert.deepEqual(await call(), { status: 200, body: 'kept' });
  const after = (await client.endpoints()).find((e) => e.name === 'kept')!;
  assert.deepEqual(after.instances.map((i) => i.runId), [task], 'the task left running was taken up, no new one');
  assert.equal((await service())!.replicas, 1);

  await stopAgent('SIGTERM');
  assert.equal((await service())!.replicas, 0, 'an agent that stops scales its endpoints to 0');
  await startAgent();
  assert.deepEqual(await call(), { status: 200, body: 'kept' }, 'served again after the restart');

  // A redeploy: a new service beside the old one, which answers until the new one has a task ready, then goes.
  writeFileSync(path.join(dir, 'www/index.html'), 'kept v2');
  const again = await runCli(['deploy', 'kept', path.join(dir, 'Dockerfile'), '--port', '8000', '--idle', '60s', '--max', '1',
    '--cpus', '0.5', '--memory', '64m', '--agent', url, '--token-file', tokenFile]);
  assert.equal(again.code, 0, again.stderr);
  const during = await call();
  assert.equal(during.status, 200, 'a request during the redeploy is answered');
  await until('the new version answers', 60_000, async () => ((await call()).body === 'kept v2' ? true : undefined));
  await until('the old version\'s service went', 30_000, async () => {
    const list = await cluster.manager.listServices({ filters: { label: ['io.bytenite.endpoint'] } });
    return list.length === 1 ? true : undefined;
  });
  const gone = await runCli(['undeploy', 'kept', '--agent', url, '--token-file', tokenFile]);
  assert.equal(gone.code, 0, gone.stderr);
  await until('undeploy removed the service', 30_000, async () => ((await service()) === undefined ? true : undefined));
});

test('an upgrade (WebSocket) through an endpoint on the Swarm: the 101, then bytes both ways, and 401 without the token', async () => {
  // A server that answers any upgrade with 101 and then echoes: busybox nc runs it once per connection.
  const script = '#!/bin/sh\nwhile read -r line; do [ "$line" = "$(printf \'\\r\')" ] && break; done\n' +
    'printf \'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n\'\nexec cat\n';
  const dir = makeContext({ 'echo.sh': script }, 'COPY echo.sh /echo.sh\nRUN ["chmod", "755", "/echo.sh"]\nCMD ["/bin/busybox", "nc", "-ll", "-p", "8000", "-e", "/echo.sh"]\n', { uniq: true });
  dirs.push(dir);
  const r = await runCli(['deploy', 'echo', path.join(dir, 'Dockerfile'), '--port', '8000', '--idle', '60s', '--max', '1',
    '--cpus', '0.5', '--memory', '64m', '--agent', url, '--token-file', tokenFile]);
  assert.equal(r.code, 0, r.stderr);
  const upgrade = (auth: boolean) => new Promise<string>((resolve, reject) => {
    const { port } = new URL(base);
    const sock = net.connect(Number(port), '127.0.0.1');
    let got = '';
    sock.on('data', (d) => {
      got += d;
      if (got.includes('\r\n\r\n') && !got.includes('ping-through-swarm') && got.startsWith('HTTP/1.1 101')) sock.write('ping-through-swarm');
      if (got.includes('ping-through-swarm') || (got.includes('\r\n\r\n') && !got.startsWith('HTTP/1.1 101'))) {
        sock.end();
        resolve(got);
      }
    });
    sock.on('error', reject);
    sock.setTimeout(120_000, () => reject(new Error(`no answer: ${got}`)));
    sock.write(`GET /e/echo/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n${auth ? `Authorization: Bearer ${token}\r\n` : ''}\r\n`);
  });
  assert.match(await upgrade(false), /^HTTP\/1\.1 401/);
  const answer = await upgrade(true);
  assert.match(answer, /^HTTP\/1\.1 101 Switching Protocols/);
  assert.match(answer, /\r\n\r\nping-through-swarm$/);
  const gone = await runCli(['undeploy', 'echo', '--agent', url, '--token-file', tokenFile]);
  assert.equal(gone.code, 0, gone.stderr);
  await until('undeploy removed the service', 30_000, async () => ((await service()) === undefined ? true : undefined));
});

test('a task that crashes mid-request on the Swarm: 502 for that request, the next one served by the task Swarm starts instead', async () => {
  const crash = '#!/bin/sh\nkill -9 $(pidof httpd)\nsleep 5\n';
  const dir = makeContext({ 'www/index.html': 'up', 'www/cgi-bin/crash': crash },
    'COPY www /www\nRUN ["chmod", "755", "/www/cgi-bin/crash"]\nCMD ["sh", "-c", "httpd -f -p 8000 -h /www; exit 1"]\n', { uniq: true });
  dirs.push(dir);
  const r = await runCli(['deploy', 'crashy', path.join(dir, 'Dockerfile'), '--port', '8000', '--idle', '60s', '--max', '1',
    '--cpus', '0.5', '--memory', '64m', '--agent', url, '--token-file', tokenFile]);
  assert.equal(r.code, 0, r.stderr);
  const auth = { authorization: `Bearer ${token}` };
  assert.deepEqual(await get(`${base}/e/crashy/index.html`, auth), { status: 200, body: 'up' });
  const [first] = (await client.endpoints()).find((e) => e.name === 'crashy')!.instances.map((i) => i.runId);
  const crashed = await get(`${base}/e/crashy/cgi-bin/crash`, auth);
  assert.equal(crashed.status, 502, crashed.body);
  console.log(`# the crashed request: ${crashed.body.trim()}`);
  const next = await get(`${base}/e/crashy/index.html`, auth);
  assert.deepEqual(next, { status: 200, body: 'up' });
  const [second] = (await client.endpoints()).find((e) => e.name === 'crashy')!.instances.map((i) => i.runId);
  assert.notEqual(second, first, 'a new task answered');
  const gone = await runCli(['undeploy', 'crashy', '--agent', url, '--token-file', tokenFile]);
  assert.equal(gone.code, 0, gone.stderr);
  await until('undeploy removed the service', 30_000, async () => ((await service()) === undefined ? true : undefined));
});
