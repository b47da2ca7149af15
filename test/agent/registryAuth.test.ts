// Private base images: a registry of the test's own (Debian's docker-registry behind htpasswd, on a free
// loopback port, which the engine allows over plain HTTP) holds a small image; a FROM of it builds with the
// credentials of a Docker config, with both builders, and fails in clear words without them. The password
// shows up in no event, error, log or file of the agent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import path from 'node:path';
import pino from 'pino';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { DockerEngine } from '../../agent/engine/dockerEngine';
import { RegistryAuth, TenantRegistryAuth } from '../../agent/build/registryAuth';
import type { RunEvent } from '../../agent/protocol';
import { cleanup, freePort, runCli, startTestAgent, tmpDir, type TestAgent } from './helpers';

const DOCKER = '/usr/bin/docker';
const hex = (n: number) => randomBytes(n).toString('hex');
const base = tmpDir('bytenite-registry-');
const password = `pw-${hex(12)}`;
const marker = `private base ${hex(4)}`;
let registry: ChildProcess | undefined;
let image = '';
let host = '';
/** A Docker config with the registry's credentials, as `docker login` writes it, and one without. */
const withAuth = path.join(base, 'docker-config');
const without = path.join(base, 'no-config');
const agents: TestAgent[] = [];
const clients: AgentClient[] = [];

before(async () => {
  for (const tool of ['docker-registry', 'htpasswd']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: run bash scripts/setup.sh --tests`);
  }
  host = `127.0.0.1:${await freePort()}`;
  writeFileSync(path.join(base, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', 'alice', password]));
  writeFileSync(path.join(base, 'registry.yml'), [
    'version: 0.1', 'log: { level: warn }', `storage: { filesystem: { rootdirectory: ${base}/data } }`, `http: { addr: "${host}" }`,
    `auth: { htpasswd: { realm: bytenite-test, path: ${base}/htpasswd } }`, '',
  ].join('\n'));
  const log = openSync(path.join(base, 'registry.log'), 'a');
  registry = spawn('docker-registry', ['serve', path.join(base, 'registry.yml')], { stdio: ['ignore', log, log] });
  for (let i = 0; ; i++) {
    const up = await fetch(`http://${host}/v2/`).then((r) => r.status === 401, () => false);
    if (up) break;
    if (i > 100) throw new Error(`the test registry did not come up on ${host}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // The private image: busybox and a marker file, pushed with credentials, then gone from the engine.
  const ctx = path.join(base, 'base');
  mkdirSync(ctx);
  copyFileSync('/bin/busybox', path.join(ctx, 'busybox'));
  writeFileSync(path.join(ctx, 'Dockerfile'), `FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nRUN echo "${marker}" > /marker\n`);
  image = `${host}/base-${hex(4)}:v1`;
  const env = { ...process.env, DOCKER_CONFIG: withAuth, DOCKER_BUILDKIT: '0' };
  execFileSync(DOCKER, ['build', '-q', '-t', image, ctx], { env, stdio: 'pipe' });
  execFileSync(DOCKER, ['login', '-u', 'alice', '--password-stdin', host], { env, input: password, stdio: 'pipe' });
  execFileSync(DOCKER, ['push', image], { env, stdio: 'pipe' });
  execFileSync(DOCKER, ['rmi', image], { stdio: 'pipe' });
  mkdirSync(without);
  writeFileSync(path.join(without, 'config.json'), '{"auths": {}}\n');
});

after(async () => {
  for (const c of clients) c.close();
  for (const a of agents) await a.close();
  registry?.kill();
  spawnSync(DOCKER, ['rmi', image], { stdio: 'ignore' }); // the legacy builder's pull tags it
  cleanup(base);
});

/** An agent with these credentials and builder; its log (debug level) kept to look for the password. */
async function agentWith(builder: 'buildkit' | 'legacy', registryAuth: RegistryAuth) {
  const logged: string[] = [];
  const log = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { logged.push(String(c)); cb(); } }));
  const agent = await startTestAgent({ engine: new DockerEngine(undefined, { hotPool: 0, builder, registryAuth }), log });
  agents.push(agent);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  clients.push(client);
  return { agent, client, logged };
}

async function buildFromPrivate(client: AgentClient) {
  const dir = tmpDir('bytenite-ctx-');
  writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${image}\nLABEL test.uniq=${hex(6)}\nRUN cat /marker > /seen\n`);
  const events: RunEvent[] = [];
  let out = '';
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: { cpus: 0.5, memoryMiB: 64 }, command: ['cat', '/seen'],
    onEvent: (_s, e) => {
      events.push(e);
      if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
    },
  });
  const final = await r.done;
  cleanup(dir);
  return { final, out, events };
}

function assertNoPassword(where: string, text: string): void {
  assert.equal(text.includes(password), false, `the password is not in ${where}`);
}

// Without credentials first: a builder that pulled the image once could otherwise find it already there.
for (const builder of ['legacy', 'buildkit'] as const) {
  test(`${builder}: without credentials, a FROM of a private image fails in words that say what to do`, async () => {
    const { client, logged } = await agentWith(builder, RegistryAuth.fromFlag(path.join(without, 'config.json')));
    const { final, events } = await buildFromPrivate(client);
    assert.equal(final.kind, 'failed', JSON.stringify(final));
    if (final.kind !== 'failed') return;
    assert.equal(final.code, 'build');
    assert.match(final.message, new RegExp(`the agent has no credentials for ${host.replace(/\./g, '\\.')}`));
    assert.match(final.message, /docker login .*--registry-auth FILE/s);
    assertNoPassword('the events', JSON.stringify(events));
    assertNoPassword('the log', logged.join(''));
  });
}

for (const builder of ['buildkit', 'legacy'] as const) {
  test(`${builder}: with --registry-auth FILE (a Docker config), a FROM of a private image builds`, async () => {
    const { agent, client, logged } = await agentWith(builder, RegistryAuth.fromFlag(path.join(withAuth, 'config.json')));
    const { final, out, events } = await buildFromPrivate(client);
    assert.equal(final.kind === 'exited' && final.exitCode, 0, JSON.stringify(final));
    assert.equal(final.kind === 'exited' && final.builder, builder);
    assert.equal(out, `${marker}\n`);
    assertNoPassword('the events', JSON.stringify(events));
    assertNoPassword('the log', logged.join(''));
    assert.equal(spawnSync('grep', ['-rlF', password, agent.dataDir]).stdout.toString(), '', 'nor in the agent\'s data folder');
    // The legacy builder's pull tags the image on the engine, and BuildKit prefers an image the engine has:
    // without this, a later build would not ask the registry at all.
    spawnSync(DOCKER, ['rmi', image], { stdio: 'ignore' });
  });
}

test('buildkit: credentials from a credential helper (credsStore, as Docker Desktop\'s docker login keeps them)', async () => {
  const bin = path.join(base, 'bin');
  mkdirSync(bin, { recursive: true });
  const helper = path.join(bin, 'docker-credential-bntest');
  writeFileSync(helper, `#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = "${host}" ] && printf '%s' '{"ServerURL":"${host}","Username":"alice","Secret":"${password}"}' && exit 0\necho "credentials not found in native keychain"; exit 1\n`);
  chmodSync(helper, 0o755);
  const helped = path.join(base, 'helper-config');
  mkdirSync(helped);
  writeFileSync(path.join(helped, 'config.json'), JSON.stringify({ auths: { [host]: {} }, credsStore: 'bntest' }));
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  try {
    const { client, logged } = await agentWith('buildkit', RegistryAuth.fromFlag(path.join(helped, 'config.json')));
    const { final, out, events } = await buildFromPrivate(client);
    assert.equal(final.kind === 'exited' && final.exitCode, 0, JSON.stringify(final));
    assert.equal(out, `${marker}\n`);
    assertNoPassword('the events', JSON.stringify(events));
    assertNoPassword('the log', logged.join(''));
  } finally {
    process.env.PATH = oldPath;
  }
});

test('a shared agent: a tenant gets its own credentials, and never the owner\'s', async () => {
  const owner = RegistryAuth.fromFlag(path.join(withAuth, 'config.json'));
  const tokens = new Map([[hex(16), 'default'], [hex(16), 'bob'], [hex(16), 'carol']]);
  const tokenOf = (tenant: string) => [...tokens].find(([, t]) => t === tenant)![0];
  const registryAuth = new TenantRegistryAuth(owner, new Map([['carol', RegistryAuth.fromFlag(path.join(withAuth, 'config.json'))]]));
  const agent = await startTestAgent({ engine: new DockerEngine(undefined, { hotPool: 0, builder: 'buildkit', registryAuth }), tokens });
  agents.push(agent);
  const as = async (tenant: string) => {
    const c = await AgentClient.connect(agent.url, { token: tokenOf(tenant) });
    clients.push(c);
    return c;
  };
  const carol = await buildFromPrivate(await as('carol'));
  assert.equal(carol.final.kind === 'exited' && carol.final.exitCode, 0, JSON.stringify(carol.final));
  const bob = await buildFromPrivate(await as('bob'));
  assert.equal(bob.final.kind, 'failed', JSON.stringify(bob.final));
  if (bob.final.kind === 'failed') {
    assert.match(bob.final.message, /tenant "bob" has no registry credentials on this agent .*--tenant-registry-auth bob=FILE/s);
  }
});

for (const builder of ['legacy', 'buildkit'] as const) {
  test(`${builder}: on a shared agent, a private base image already on the engine is not a way around the registry`, async () => {
    const tokens = new Map([[hex(16), 'default'], [hex(16), 'bob'], [hex(16), 'carol']]);
    const tokenOf = (tenant: string) => [...tokens].find(([, t]) => t === tenant)![0];
    const registryAuth = new TenantRegistryAuth(undefined, new Map([['carol', RegistryAuth.fromFlag(path.join(withAuth, 'config.json'))]]));
    const agent = await startTestAgent({ engine: new DockerEngine(undefined, { hotPool: 0, builder, registryAuth }), tokens });
    agents.push(agent);
    const as = async (tenant: string) => {
      const c = await AgentClient.connect(agent.url, { token: tokenOf(tenant) });
      clients.push(c);
      return c;
    };
    // Someone with the credentials pulled it: the engine has it by name (as a legacy build's pull leaves it).
    execFileSync(DOCKER, ['pull', '-q', image], { env: { ...process.env, DOCKER_CONFIG: withAuth }, stdio: 'pipe' });
    try {
      const bob = await buildFromPrivate(await as('bob'));
      assert.equal(bob.final.kind, 'failed', `bob, with no credentials, built from carol's private image: ${JSON.stringify(bob.final)}`);
      if (bob.final.kind === 'failed') assert.match(bob.final.message, /tenant "bob" has no registry credentials on this agent/);
      const carol = await buildFromPrivate(await as('carol'));
      assert.equal(carol.final.kind === 'exited' && carol.final.exitCode, 0, JSON.stringify(carol.final));
      assert.equal(carol.out, `${marker}\n`);
    } finally {
      spawnSync(DOCKER, ['rmi', image], { stdio: 'ignore' });
    }
  });
}

test('bytenite run: the owner\'s Docker config ($DOCKER_CONFIG) gives the embedded agent its credentials; a wrong password is named as such', async () => {
  const dir = tmpDir('bytenite-ctx-');
  writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${image}\nLABEL test.uniq=${hex(6)}\n`);
  try {
    const ok = await runCli(['run', path.join(dir, 'Dockerfile'), '--', 'cat', '/marker'], { env: { DOCKER_CONFIG: withAuth } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `${marker}\n`);
    assertNoPassword('the CLI\'s output', ok.stdout + ok.stderr);

    const wrong = path.join(base, 'wrong-config');
    mkdirSync(wrong);
    writeFileSync(path.join(wrong, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from('alice:not-it').toString('base64') } } }));
    writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${image}\nLABEL test.uniq=${hex(6)}\n`);
    const refused = await runCli(['run', path.join(dir, 'Dockerfile'), '--', 'cat', '/marker'], { env: { DOCKER_CONFIG: wrong } });
    assert.equal(refused.code, 125, refused.stderr);
    assert.match(refused.stderr, new RegExp(`${host.replace(/\./g, '\\.')} refused the credentials the agent has for it`));
    assert.equal(refused.stderr.includes('not-it'), false, 'the wrong password is not shown either');
  } finally {
    cleanup(dir);
  }
});
