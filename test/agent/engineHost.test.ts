// The engine found as the docker CLI finds it, against the real engine: a Docker context whose socket is a
// counting proxy in front of it carries the run when DOCKER_HOST is unset, and none of it when DOCKER_HOST is
// set; DOCKER_CONTEXT and --docker-context pick a context; a broken context is named in the error; the agent
// says which engine it is on and how it found it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { cleanup, makeContext, runCli, tmpDir } from './helpers';

const dirs: string[] = [];
let proxy: net.Server;
let connections = 0;
let cfg: string;
let sock: string;

/** A docker config folder whose contexts point at the given hosts. */
function dockerConfig(dir: string, contexts: Record<string, string>, current?: string): void {
  if (current) writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ currentContext: current }));
  for (const [name, host] of Object.entries(contexts)) {
    const id = createHash('sha256').update(name).digest('hex');
    mkdirSync(path.join(dir, 'contexts', 'meta', id), { recursive: true });
    writeFileSync(path.join(dir, 'contexts', 'meta', id, 'meta.json'), JSON.stringify({ Name: name, Endpoints: { docker: { Host: host } } }));
  }
}

before(async () => {
  cfg = tmpDir('bytenite-dockercfg-');
  dirs.push(cfg);
  sock = path.join(cfg, 'proxy.sock');
  proxy = net.createServer((c) => {
    connections++;
    const up = net.connect('/var/run/docker.sock');
    c.on('error', () => up.destroy()).pipe(up).on('error', () => c.destroy()).pipe(c);
  });
  await new Promise<void>((r) => proxy.listen(sock, () => r()));
  dockerConfig(cfg, { desk: `unix://${sock}`, broken: 'unix:///nowhere/docker.sock' }, 'desk');
});
after(async () => {
  await new Promise((r) => proxy.close(r));
  cleanup(...dirs);
});

const ctx = () => {
  const d = makeContext({}, 'CMD ["echo", "via the context"]\n');
  dirs.push(d);
  return path.join(d, 'Dockerfile');
};
const noHost = { DOCKER_HOST: '', DOCKER_CONTEXT: '' };

test('with DOCKER_HOST unset, the current context\'s engine carries the run; with DOCKER_HOST set, it carries nothing', async () => {
  const file = ctx();
  connections = 0;
  const r = await runCli(['run', file], { env: { ...noHost, DOCKER_CONFIG: cfg } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'via the context\n');
  assert.ok(connections > 0, 'the run went through the context\'s socket');
  connections = 0;
  const direct = await runCli(['run', file], { env: { ...noHost, DOCKER_CONFIG: cfg, DOCKER_HOST: 'unix:///var/run/docker.sock' } });
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(connections, 0, 'DOCKER_HOST wins over the context');
});

test('DOCKER_CONTEXT and --docker-context pick a context; a context that does not answer is named with where the agent looked', async () => {
  const file = ctx();
  const viaEnv = await runCli(['run', file], { env: { ...noHost, DOCKER_CONFIG: cfg, DOCKER_CONTEXT: 'broken' } });
  assert.equal(viaEnv.code, 125);
  assert.match(viaEnv.stderr, /no Docker Engine answers at unix:\/\/\/nowhere\/docker\.sock \(context "broken", from DOCKER_CONTEXT\)/);
  assert.match(viaEnv.stderr, /Looked at, in order: DOCKER_HOST \(not set\); DOCKER_CONTEXT/);
  const missing = await runCli(['run', file], { env: { ...noHost, DOCKER_CONFIG: cfg, DOCKER_CONTEXT: 'ghost' } });
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /Docker context "ghost" is not in .*docker context ls/);
});

test('bytenite agent --docker-context: the start-up line and bytenite hardware name the engine, its version and how it was found', async () => {
  const { spawn } = await import('node:child_process');
  const data = tmpDir('bytenite-data-');
  dirs.push(data);
  const { CLI } = await import('./helpers');
  const child = spawn(process.execPath, [CLI, 'agent', '--port', '0', '--data-dir', data, '--docker-context', 'desk', '--hot-pool', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...noHost, DOCKER_CONFIG: cfg, BYTENITE_LOG_LEVEL: 'warn' },
  });
  try {
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (c) => reject(new Error(`agent exited ${c}: ${err}`)));
    });
    const started = Date.now();
    while (!/engine: /.test(err) && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50));
    assert.match(err, new RegExp(`engine: Docker Engine \\S+ \\(API [\\d.]+\\) at unix://${sock.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(context "desk", from --docker-context\\)`));
    writeFileSync(path.join(data, 'client-token'), (await import('node:fs')).readFileSync(path.join(data, 'token')));
    const hw = await runCli(['hardware', '--agent', url, '--token-file', path.join(data, 'client-token')]);
    assert.match(hw.stdout, /^Engine: Docker Engine .* \(context "desk", from --docker-context\)$/m);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

test('bytenite agent --engine swarm finds its manager by the same rules: the context is asked, and named when it is no manager', async () => {
  const data = tmpDir('bytenite-data-');
  dirs.push(data);
  const before = connections;
  const r = await runCli(['agent', '--port', '0', '--data-dir', data, '--engine', 'swarm', '--registry', '127.0.0.1:5000', '--docker-context', 'desk'], { env: { ...noHost, DOCKER_CONFIG: cfg } });
  assert.equal(r.code, 125, r.stderr);
  assert.ok(connections > before, 'the swarm agent asked the context\'s engine (the proxy), not the default socket');
  assert.match(r.stderr, new RegExp(`the Docker Engine at unix://${sock.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(context "desk", from --docker-context\\) is not a Swarm manager`));
  const broken = await runCli(['agent', '--port', '0', '--data-dir', data, '--engine', 'swarm', '--registry', '127.0.0.1:5000', '--docker-context', 'broken'], { env: { ...noHost, DOCKER_CONFIG: cfg } });
  assert.equal(broken.code, 125);
  assert.match(broken.stderr, /no Docker Engine answers at unix:\/\/\/nowhere\/docker\.sock \(context "broken", from --docker-context\)/);
});
