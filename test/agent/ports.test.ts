// Port forwards (`-p`) and run isolation, on the real engine, with real HTTP and WebSocket clients: the CLI's
// forward on the embedded agent, on a standalone agent with a token, on a `--no-network` agent (the relay
// inside the container), `attach -p` across an agent restart, tenants, and what a container cannot reach.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, ChildProcess, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import {
  CLI, ROOT, cleanup, docker, freePort, makeContext, spawnAgent, startTestAgent, stopAgent, tmpDir,
} from './helpers';
import { SERVICE_PORT, serviceContext } from './serviceImage';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { openRawTunnel, openTunnel, TunnelRefused } from '../../agent/client/openTunnel';
import type { RunEvent } from '../../agent/protocol';

let svc: string;
const dirs: string[] = [];
before(() => {
  svc = serviceContext();
  dirs.push(svc);
});
after(() => cleanup(...dirs));

const READY = /bytenite: (http:\/\/127\.0\.0\.1:(\d+)) -> port (\d+) of the container \(ready (\d+) ms after start\)/;

interface CliRun {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

function cli(args: string[], cwd: string, env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, BYTENITE_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}

async function until<T>(what: string, fn: () => T | undefined | false, ms = 120_000, run?: CliRun): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${run ? `\nstderr: ${run.err()}\nstdout: ${run.out().slice(-2000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function get(url: string, agent?: http.Agent): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: agent ?? false, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

function echo(url: string, messages: Array<string | Buffer>): Promise<Array<string | Buffer>> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const got: Array<string | Buffer> = [];
    ws.on('open', () => messages.forEach((m) => ws.send(m)));
    ws.on('message', (data: Buffer, isBinary) => {
      got.push(isBinary ? Buffer.from(data) : data.toString());
      if (got.length === messages.length) {
        ws.close();
        resolve(got);
      }
    });
    ws.on('error', reject);
  });
}

const ticks = (out: string) => (out.match(/^tick \d+$/gm) ?? []).length;

test('bytenite run -p: a page, 5 MB by hash, 50 parallel requests, a WebSocket echo, a stalled reader, and the run\'s end', async () => {
  const dataDir = tmpDir('bytenite-ports-');
  dirs.push(dataDir);
  const local = await freePort();
  const run = cli(['run', '--data-dir', dataDir, '-p', `${local}:${SERVICE_PORT}`, '--env', 'MARKER=svc-one', '--timeout', '5m'], svc);
  const m = (await until("the ready line", () => READY.exec(run.err()), 240_000, run))!;
  assert.equal(Number(m[2]), local);
  assert.equal(Number(m[3]), SERVICE_PORT);
  const base = m[1];

  const page = await get(`${base}/`);
  assert.equal(page.status, 200);
  assert.equal(page.body.toString(), 'svc-one');

  const big = await get(`${base}/big`);
  assert.equal(big.body.length, 5 * 1024 * 1024);
  assert.equal(createHash('sha256').update(big.body).digest('hex'), big.headers['x-sha256']);

  // 50 connections at once, each its own tunnel.
  const many = await Promise.all(Array.from({ length: 50 }, () => get(`${base}/`)));
  assert.deepEqual(many.map((r) => `${r.status} ${r.body}`), Array(50).fill('200 svc-one'));

  const binary = randomBytes(1024 * 1024);
  const echoed = await echo(`ws://127.0.0.1:${local}/ws`, ['hello', binary]);
  assert.equal(echoed[0], 'hello');
  assert.ok(Buffer.isBuffer(echoed[1]) && binary.equals(echoed[1] as Buffer), 'the 1 MiB binary message came back unchanged');

  // A reader that stops reading a 2 GB download: its connection is held back, nothing else is.
  const stalled = net.connect(local, '127.0.0.1');
  let stalledBytes = 0;
  let stalling = true;
  stalled.on('error', () => {});
  stalled.on('data', (c) => {
    stalledBytes += c.length;
    if (stalling && stalledBytes > 1024 * 1024) stalled.pause();
  });
  stalled.write('GET /bytes?n=2000000000 HTTP/1.1\r\nHost: x\r\n\r\n');
  await until('the stalled download to start', () => stalledBytes > 1024 * 1024);
  await new Promise((r) => setTimeout(r, 1000));
  const ticksBefore = ticks(run.out());
  const t0 = Date.now();
  const during = await get(`${base}/`);
  assert.equal(during.body.toString(), 'svc-one');
  assert.ok(Date.now() - t0 < 2000, `another connection answered in ${Date.now() - t0} ms while one reader stalled`);
  await until('log lines while the reader stalls', () => ticks(run.out()) >= ticksBefore + 3);
  assert.ok(stalledBytes < 200 * 1024 * 1024, `the stalled connection was held back (${stalledBytes} bytes delivered, not the 2 GB)`);

  // The run ends: its open connections close, and the forward no longer takes connections.
  const idle = new WebSocket(`ws://127.0.0.1:${local}/ws`);
  await new Promise((r, j) => idle.once('open', r).once('error', j));
  const idleClosed = new Promise((r) => idle.once('close', r));
  const stalledClosed = new Promise((r) => stalled.once('close', r));
  await get(`${base}/exit`);
  assert.equal(await run.exited, 0, run.err());
  stalling = false;
  stalled.resume(); // a paused socket would not read the end
  await Promise.all([idleClosed, stalledClosed]);
  await assert.rejects(get(`${base}/`), /ECONNREFUSED/);
});

test('a standalone agent with a token forwards; with --no-network the container has no network and is still reached', async () => {
  for (const extra of [[], ['--no-network']]) {
    const dataDir = tmpDir('bytenite-ports-agent-');
    dirs.push(dataDir);
    const tokenFile = path.join(dataDir, 'token');
    writeFileSync(tokenFile, randomBytes(16).toString('hex'));
    const agent = await spawnAgent(dataDir, tokenFile, await freePort(), {}, extra);
    try {
      const run = cli(['run', '--agent', agent.url, '--token-file', tokenFile, '-p', `127.0.0.1::${SERVICE_PORT}`, '--json', '--env', 'MARKER=standalone', '--timeout', '5m'], svc);
      const forward = await until('the forward line', () => run.out().split('\n').map((l) => (l.startsWith('{"type":"forward"') ? JSON.parse(l) : undefined)).find(Boolean), 240_000, run);
      assert.match(forward.local, /^127\.0\.0\.1:\d+$/);
      assert.equal(forward.port, SERVICE_PORT);
      assert.equal((await get(`${forward.url}/`)).body.toString(), 'standalone');
      const big = await get(`${forward.url}/big`);
      assert.equal(createHash('sha256').update(big.body).digest('hex'), big.headers['x-sha256']);
      const [c] = await docker.listContainers({ filters: { label: [`io.bytenite.run=${forward.runId}`] } });
      const info = await docker.getContainer(c.Id).inspect();
      if (extra.length) assert.equal(info.HostConfig.NetworkMode, 'none');
      else assert.match(String(info.HostConfig.NetworkMode), /^bytenite-/);
      await get(`${forward.url}/exit`);
      assert.equal(await run.exited, 0, run.err());
    } finally {
      await stopAgent(agent);
    }
  }
});

test('a forward reaches only its own tenant\'s run, by WebSocket and by raw TCP alike; an ended run\'s forward is refused at once', async () => {
  const tokens = new Map([['token-alpha-0123456789', 'alpha'], ['token-beta-0123456789', 'beta']]);
  const agent = await startTestAgent({ tokens });
  dirs.push(agent.dataDir);
  const alpha = await AgentClient.connect(agent.url, { token: 'token-alpha-0123456789' });
  try {
    const events: RunEvent[] = [];
    const started = await startRun(Promise.resolve(alpha), {
      contextDir: svc, dockerfile: path.join(svc, 'Dockerfile'), hardware: { cpus: 1, memoryMiB: 256 }, env: { MARKER: 'alpha' },
      ports: [SERVICE_PORT], onEvent: (_s, e) => events.push(e),
    });
    const ready = await until('the port event', () => events.find((e) => e.kind === 'port'), 240_000);
    assert.equal(ready.kind === 'port' && ready.port, SERVICE_PORT);

    // Alpha's own tunnel carries an HTTP request.
    const ws = await alpha.tunnel(started.runId, SERVICE_PORT);
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      ws.on('message', (d: Buffer, bin) => {
        if (bin) text += d.toString();
        if (text.includes('alpha')) resolve(text);
      });
      ws.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    });
    assert.match(reply, /^HTTP\/1\.1 200/);
    ws.close();

    // The same through the raw tunnel (capability raw-tunnel): plain bytes after the 101.
    const raw = await alpha.dialTunnel(started.runId, SERVICE_PORT);
    assert.ok(raw, 'the agent offers raw-tunnel');
    raw.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    let rawReply = '';
    for await (const c of raw) rawReply += c;
    assert.match(rawReply, /^HTTP\/1\.1 200[\s\S]*alpha/);

    const refusal = async (token: string, runId: string, open: typeof openTunnel | typeof openRawTunnel = openTunnel) => {
      try {
        await open(agent.url, { token }, runId, SERVICE_PORT);
      } catch (err) {
        assert.ok(err instanceof TunnelRefused);
        return `${err.status} ${err.message}`;
      }
      assert.fail('the tunnel was opened');
    };
    for (const open of [openTunnel, openRawTunnel]) {
      const otherTenant = (await refusal('token-beta-0123456789', started.runId, open)).replace(started.runId, 'RUN');
      const missing = (await refusal('token-beta-0123456789', 'r-0000000000000000', open)).replace('r-0000000000000000', 'RUN');
      assert.equal(otherTenant, missing);
      assert.match(otherTenant, /^404 no run RUN on this agent$/);
      assert.match(await refusal('wrong-token', started.runId, open), /^401 /);
    }

    await alpha.cancel(started.runId);
    await started.done;
    for (const open of [openTunnel, openRawTunnel]) {
      const t0 = Date.now();
      assert.match(await refusal('token-alpha-0123456789', started.runId, open), /^410 run r-\S+ is over \(the run was cancelled\)/);
      assert.ok(Date.now() - t0 < 1000);
    }
  } finally {
    alpha.close();
    await agent.close();
  }
});

test('attach -p reaches a run started elsewhere, and after the agent restarts, new connections go through again', async () => {
  const dataDir = tmpDir('bytenite-ports-attach-');
  dirs.push(dataDir);
  const tokenFile = path.join(dataDir, 'token');
  const token = randomBytes(16).toString('hex');
  writeFileSync(tokenFile, token);
  const port = await freePort();
  let agent = await spawnAgent(dataDir, tokenFile, port);
  const client = await AgentClient.connect(agent.url, { token });
  let attach: CliRun | undefined;
  try {
    const events: RunEvent[] = [];
    const started = await startRun(Promise.resolve(client), {
      contextDir: svc, dockerfile: path.join(svc, 'Dockerfile'), hardware: { cpus: 1, memoryMiB: 256 }, env: { MARKER: 'attached' },
      onEvent: (_s, e) => events.push(e),
    });
    started.done.catch(() => {});
    await until('the run to run', () => events.some((e) => e.kind === 'running'), 240_000);
    const local = await freePort();
    attach = cli(['attach', started.runId, '--agent', agent.url, '--token-file', tokenFile, '-p', `${local}:${SERVICE_PORT}`], ROOT);
    await until('the ready line', () => READY.exec(attach!.err()), 60_000, attach);
    const base = `http://127.0.0.1:${local}`;
    assert.equal((await get(`${base}/`)).body.toString(), 'attached');

    const open = new WebSocket(`ws://127.0.0.1:${local}/ws`);
    await new Promise((r, j) => open.once('open', r).once('error', j));
    const closed = new Promise((r) => open.once('close', r));
    client.close();
    agent.child.kill('SIGKILL');
    await closed; // an open connection is closed, not silently moved
    agent = await spawnAgent(dataDir, tokenFile, port);
    let answer: string | undefined;
    const again = await until('a request through the forward after the restart', () => {
      void get(`${base}/`).then((r) => (answer = r.body.toString()), () => {});
      return answer;
    }, 60_000, attach);
    assert.equal(again, 'attached');
    await get(`${base}/exit`);
    assert.equal(await attach.exited, 0, attach.err());
  } finally {
    attach?.child.kill();
    client.close();
    await stopAgent(agent);
  }
});

test('a run\'s container cannot reach another run\'s server nor the metadata address, and still reaches the outside', async (t) => {
  // A stand-in for the outside: a network namespace holding 169.254.169.254 and an ordinary address, both serving a page.
  const ns = `bnt${randomBytes(3).toString('hex')}`;
  const [hostIf, nsIf] = [`${ns}a`, `${ns}b`];
  const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { stdio: 'pipe' });
  const www = tmpDir('bytenite-nsweb-');
  dirs.push(www);
  writeFileSync(path.join(www, 'index.html'), 'outside-page');
  sh(`ip netns add ${ns} && ip link add ${hostIf} type veth peer name ${nsIf} && ip link set ${nsIf} netns ${ns} && ` +
    `ip addr add 10.213.7.1/24 dev ${hostIf} && ip link set ${hostIf} up && ` +
    `ip netns exec ${ns} sh -c 'ip addr add 10.213.7.2/24 dev ${nsIf} && ip addr add 169.254.169.254/32 dev ${nsIf} && ip link set ${nsIf} up && ip link set lo up && ip route add default via 10.213.7.1' && ` +
    `ip route replace 169.254.169.254/32 via 10.213.7.2 dev ${hostIf}`);
  const httpd = spawn('ip', ['netns', 'exec', ns, '/bin/busybox', 'httpd', '-f', '-p', '80', '-h', www], { stdio: 'ignore' });
  t.after(() => {
    httpd.kill();
    try { sh(`ip route del 169.254.169.254/32 via 10.213.7.2; ip link del ${hostIf}; ip netns del ${ns}`); } catch { /* already gone */ }
  });

  const tokens = new Map([['token-alpha-0123456789', 'alpha'], ['token-beta-0123456789', 'beta']]);
  const agent = await startTestAgent({ tokens, hotPool: 0 });
  dirs.push(agent.dataDir);
  const alpha = await AgentClient.connect(agent.url, { token: 'token-alpha-0123456789' });
  const beta = await AgentClient.connect(agent.url, { token: 'token-beta-0123456789' });
  const networks = new Set<string>();
  try {
    const events: RunEvent[] = [];
    const server = await startRun(Promise.resolve(alpha), {
      contextDir: svc, dockerfile: path.join(svc, 'Dockerfile'), hardware: { cpus: 1, memoryMiB: 256 }, ports: [SERVICE_PORT], onEvent: (_s, e) => events.push(e),
    });
    await until('the server to listen', () => events.some((e) => e.kind === 'port'), 240_000);
    const [c] = await docker.listContainers({ filters: { label: [`io.bytenite.run=${server.runId}`] } });
    const info = await docker.getContainer(c.Id).inspect();
    Object.keys(info.NetworkSettings.Networks).forEach((n) => networks.add(n));
    const ip = Object.values(info.NetworkSettings.Networks)[0].IPAddress;
    // The agent's own host reaches it (that is how forwards get in); the test, on the same host, can too.
    assert.equal((await get(`http://${ip}:${SERVICE_PORT}/`)).body.toString(), 'marker');

    const probe = makeContext({}, '', { uniq: true });
    dirs.push(probe);
    const script = [
      `nc -w 3 ${ip} ${SERVICE_PORT} </dev/null && echo RUN=reached || echo RUN=blocked`,
      'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 169.254.169.254 80 | grep -q outside-page && echo META=reached || echo META=blocked',
      'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 10.213.7.2 80 | grep -q outside-page && echo OUTSIDE=reached || echo OUTSIDE=blocked',
    ].join('; ');
    for (const [who, client] of [['same tenant', alpha], ['other tenant', beta]] as const) {
      let out = '';
      const r = await startRun(Promise.resolve(client), {
        contextDir: probe, dockerfile: path.join(probe, 'Dockerfile'), hardware: { cpus: 0.5, memoryMiB: 64 }, command: ['sh', '-c', script],
        onEvent: (_s, e) => { if (e.kind === 'log') out += e.data; },
      });
      const final = await r.done;
      assert.equal(final.kind, 'exited', `${who}: ${JSON.stringify(final)}`);
      assert.match(out, /RUN=blocked/, `${who}: ${out}`);
      assert.match(out, /META=blocked/, `${who}: ${out}`);
      assert.match(out, /OUTSIDE=reached/, `${who}: ${out}`);
    }
    await alpha.cancel(server.runId);
    await server.done;
  } finally {
    alpha.close();
    beta.close();
    await agent.close();
  }
  const left = (await docker.listNetworks()).map((n) => n.Name).filter((n) => networks.has(n));
  assert.deepEqual(left, [], 'no run network is left once the agent has stopped');
  assert.ok(networks.size > 0);
});
