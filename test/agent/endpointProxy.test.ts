// Open's local forward of an endpoint (agent/client/endpointProxy.ts) on a real agent and engine: a browser's
// request without the token gets 401 at the agent, the same through the forward gets the page (the token
// added, the path after the forward's `/` kept), a 5 MiB response streams through, a WebSocket
// upgrade passes through, and an undeployed endpoint answers 404 through it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { cleanup, startTestAgent, type TestAgent } from './helpers';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';

const dirs: string[] = [];
const agents: TestAgent[] = [];
after(async () => {
  for (const a of agents) await a.close();
  cleanup(...dirs);
});

function request(url: string, opts: { method?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', agent: false, timeout: 90_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function download(url: string): Promise<{ status: number; body: Buffer; sha256?: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts), sha256: res.headers['x-sha256'] as string | undefined }));
    }).on('error', reject);
  });
}

test('a local forward adds the token: page, a 5 MiB body, WebSocket; 404 once undeployed', async () => {
  const { serviceContext } = await import('./serviceImage');
  const WebSocket = (await import('ws')).default;
  const svc = serviceContext();
  dirs.push(svc);
  const agent = await startTestAgent({});
  agents.push(agent);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const started = await startRun(client, { contextDir: svc, dockerfile: `${svc}/Dockerfile`, hardware: { cpus: 0.5, memoryMiB: 128 }, buildOnly: true, onEvent: () => {} });
  assert.equal((await started.done).kind, 'exited');
  const ep = await client.deployEndpoint('fwd', started.spec, { port: 8000, idleMs: 5000 });
  assert.equal(client.endpointUrl(ep.path), `${agent.url.replace(/^ws/, 'http')}/e/fwd/`);

  assert.equal((await request(client.endpointUrl(ep.path))).status, 401, 'the agent itself wants the token');
  const proxy = await client.proxyEndpoint('fwd');
  try {
    assert.match(proxy.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const page = await request(`${proxy.url}/`);
    assert.deepEqual(page, { status: 200, body: 'marker' });
    const big = await download(`${proxy.url}/big`);
    assert.equal(big.status, 200);
    assert.equal(createHash('sha256').update(big.body).digest('hex'), big.sha256, 'the 5 MiB body came through whole');
    const ws = await new Promise<string>((resolve, reject) => {
      const s = new WebSocket(`${proxy.url.replace(/^http/, 'ws')}/ws`);
      s.on('open', () => s.send('through the forward'));
      s.on('message', (d) => { resolve(d.toString()); s.close(); });
      s.on('error', reject);
    });
    assert.equal(ws, 'through the forward');
    // A WebSocket is journaled once it closes.
    let journal = await client.endpointRequests('fwd');
    for (const end = Date.now() + 10_000; journal.length < 3 && Date.now() < end; journal = await client.endpointRequests('fwd')) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(journal.map((r) => `${r.method} ${r.path} ${r.status}`), ['GET / 200', 'GET /big 200', 'GET /ws 101']);
    await client.removeEndpoint('fwd');
    assert.equal((await request(`${proxy.url}/`)).status, 404);
  } finally {
    await proxy.close();
    client.close();
  }
});
