// The local fast path against the real engine: an agent on this machine reads the build context from the
// client's own folder (nothing uploaded) and puts exactly the files in the image that the upload path and
// `DOCKER_BUILDKIT=1 docker build` put there (.dockerignore with `!` exceptions, symlinks as symlinks); a
// tenant's connection and a folder the agent does not see as described both take the upload path.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { DockerEngine } from '../../agent/engine/dockerEngine';
import { listForBuild } from '../../agent/context/packContext';
import { describeLocalContext } from '../../agent/context/localIdentity';
import { isFinal, type FinalEvent, type RunEvent } from '../../agent/protocol';
import { cleanup, makeContext, startTestAgent, type TestAgent } from './helpers';

const DOCKER = '/usr/bin/docker';
const HW = { cpus: 0.5, memoryMiB: 64 };
const exec = promisify(execFile);
const dirs: string[] = [];
const agents: TestAgent[] = [];
const clients: AgentClient[] = [];
const images: string[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const a of agents) await a.close();
  if (images.length) await exec(DOCKER, ['rmi', '-f', ...images]).catch(() => undefined);
  cleanup(...dirs);
});

/** Lists /ctx in the image: `type mode path [sha256 | -> target]` a line, sorted. */
const LIST = [
  'cd /ctx && find . -mindepth 1 | sort | while IFS= read -r p; do',
  '  if [ -L "$p" ]; then echo "l $(stat -c %a "$p") $p -> $(readlink "$p")";',
  '  elif [ -d "$p" ]; then echo "d $(stat -c %a "$p") $p";',
  '  else echo "f $(stat -c %a "$p") $p $(sha256sum < "$p" | cut -d" " -f1)"; fi',
  'done',
].join('\n');

/** A tree with `!` exceptions, links (absolute, relative, climbing out) and a file big enough to see uploaded. */
function tree(): string {
  const dir = makeContext({
    '.dockerignore': ['*.log', 'build', '!build/keep.txt', 'secrets/*', '!secrets/public.txt', '**/tmp', ''].join('\n'),
    'app/main.sh': 'echo main\n', 'app/debug.log': 'log', 'app/tmp/x': 'tmp', 'app/deep/tmp/y': 'tmp', 'app/deep/z.txt': 'z',
    'build/out.bin': 'out', 'build/keep.txt': 'kept', 'secrets/key.pem': 'private', 'secrets/public.txt': 'public',
    'big.bin': randomBytes(256 * 1024).toString('base64'),
  }, `COPY . /ctx\nLABEL test.uniq=${randomBytes(6).toString('hex')}\n`);
  dirs.push(dir);
  mkdirSync(path.join(dir, 'venv/bin'), { recursive: true });
  symlinkSync('/usr/bin/python3', path.join(dir, 'venv/bin/python'));
  symlinkSync('../app/main.sh', path.join(dir, 'venv/main'));
  symlinkSync('../../etc/passwd', path.join(dir, 'up'));
  // Modes pinned, so the three builds cannot differ by the umask.
  for (const f of ['app/main.sh', 'busybox']) chmodSync(path.join(dir, f), 0o755);
  return dir;
}

async function ownerAgent(tokens?: Map<string, string>) {
  const sent: { bytes: number }[] = [];
  const engine = new DockerEngine(undefined, { hotPool: 0, builder: 'buildkit', onSent: (_s, s) => sent.push({ bytes: s.bytes }) });
  const agent = await startTestAgent({ engine, ...(tokens ? { tokens } : {}) });
  agents.push(agent);
  return { agent, sent };
}

async function connect(agent: TestAgent, token = agent.token): Promise<AgentClient> {
  const c = await AgentClient.connect(agent.url, { token });
  clients.push(c);
  return c;
}

/** A run of LIST through startRun: its output, the context bytes the agent received, which path it took. */
async function listed(client: AgentClient, dir: string, localContext?: boolean) {
  let out = '';
  let uploaded = 0;
  let image = '';
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command: ['sh', '-c', LIST], noCache: true,
    ...(localContext === undefined ? {} : { localContext }),
    onEvent: (_s, e) => {
      if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
      if (e.kind === 'uploading' && !e.to) uploaded = Math.max(uploaded, e.bytesDone);
      if (e.kind === 'starting') image = e.image;
    },
  });
  const final = await r.done;
  assert.equal(final.kind, 'exited', JSON.stringify(final));
  assert.equal(final.exitCode, 0, JSON.stringify(final));
  images.push(image);
  return { out, uploaded, local: r.localContext };
}

const blobCount = (agent: TestAgent): number => {
  let n = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else n++;
    }
  };
  try {
    walk(path.join(agent.dataDir, 'blobs'));
  } catch { /* no store folder yet: nothing stored */ }
  return n;
};

test('the owner\'s local build reads the folder (nothing uploaded) and puts the same files in the image as the upload path and docker build', async () => {
  const dir = tree();
  const { agent, sent } = await ownerAgent();
  const client = await connect(agent);
  assert.ok(client.takesLocalContext, 'the owner on loopback is offered the local path');
  const blobsBefore = blobCount(agent);

  const local = await listed(client, dir);
  assert.equal(local.local, true, 'the agent read the folder itself');
  // Only the manifest's text crossed the socket: far less than the one 340 KiB file in the tree, and no content stored.
  assert.ok(local.uploaded < 64 * 1024, `context bytes received: ${local.uploaded}`);
  assert.equal(blobCount(agent), blobsBefore, 'no content went into the agent\'s store');
  assert.ok(sent.reduce((a, s) => a + s.bytes, 0) > 256 * 1024, 'the engine got the contents from the agent');

  const upload = await listed(client, dir, false);
  assert.equal(upload.local, false);
  assert.ok(upload.uploaded > 256 * 1024, `the upload path sent the contents (${upload.uploaded} bytes)`);
  assert.equal(local.out, upload.out);

  const image = `bytenite-test-local:${process.pid}`;
  images.push(image);
  await exec(DOCKER, ['build', '--no-cache', '-q', '-t', image, '.'], { cwd: dir, env: { ...process.env, DOCKER_BUILDKIT: '1' }, maxBuffer: 16 << 20 });
  const { stdout } = await exec(DOCKER, ['run', '--rm', '--network', 'none', image, 'sh', '-c', LIST], { maxBuffer: 16 << 20 });
  assert.equal(local.out, stdout, 'the same tree, contents, modes and links as DOCKER_BUILDKIT=1 docker build');
  for (const want of ['./build/keep.txt', './secrets/public.txt', 'l 777 ./venv/bin/python -> /usr/bin/python3', 'l 777 ./up -> ../../etc/passwd']) {
    assert.ok(local.out.includes(want), `${want} in\n${local.out}`);
  }
  for (const gone of ['./build/out.bin', './secrets/key.pem', './app/tmp', './app/deep/tmp']) {
    assert.ok(!local.out.includes(`${gone}\n`) && !local.out.includes(`${gone} `), `${gone} is ignored`);
  }
});

/** createRun with a hand-made local description: which path the agent took, and the run's output. */
async function forced(client: AgentClient, dir: string, tamper: (d: NonNullable<Awaited<ReturnType<typeof describeLocalContext>>>) => void) {
  const ctx = await listForBuild(dir, 'Dockerfile', {});
  const description = await describeLocalContext(dir, ctx.entries, 'Dockerfile');
  assert.ok(description);
  tamper(description);
  let out = '';
  let uploaded = 0;
  let settle!: (e: FinalEvent) => void;
  const done = new Promise<FinalEvent>((r) => (settle = r));
  const r = await client.createRun(
    { dockerfile: 'Dockerfile', contextDigest: ctx.digest, contextBytes: ctx.bytes, hardware: HW, command: ['cat', '/ctx/app/deep/z.txt'] },
    ctx, (_s, e: RunEvent) => {
      if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
      if (e.kind === 'uploading' && !e.to) uploaded = Math.max(uploaded, e.bytesDone);
      if (e.kind === 'starting') images.push(e.image);
      if (isFinal(e)) settle(e);
    }, async () => description,
  );
  const final = await done;
  assert.equal(final.kind === 'exited' && final.exitCode, 0, JSON.stringify(final));
  return { local: r.local, out, uploaded };
}

test('a tenant of a shared agent gets the upload path, even when it sends a folder', async () => {
  const dir = tree();
  const tenantToken = randomBytes(16).toString('hex');
  const owner = randomBytes(16).toString('hex');
  const { agent } = await ownerAgent(new Map([[owner, 'default'], [tenantToken, 'alice']]));
  const alice = await connect(agent, tenantToken);
  assert.equal(alice.takesLocalContext, false, 'a tenant is not offered the local path');
  const viaStartRun = await listed(alice, dir);
  assert.equal(viaStartRun.local, false);
  assert.ok(viaStartRun.uploaded > 256 * 1024);
  // A client that sends the owner's folder anyway is asked for the contents (a new tree: new contents to ask for).
  const pushed = await forced(alice, tree(), () => {});
  assert.equal(pushed.local, false);
  assert.equal(pushed.out, 'z');
  assert.ok(pushed.uploaded > 256 * 1024);
});

test('a folder the agent does not see as described falls back to the upload, and the run is right', async () => {
  const dir = tree();
  const { agent } = await ownerAgent();
  const client = await connect(agent);
  const right = await forced(client, dir, () => {});
  assert.equal(right.local, true, 'the true description is taken');
  const cases: [string, (d: Parameters<Parameters<typeof forced>[2]>[0]) => void][] = [
    ['another inode for the folder', (d) => { d.folder.ino = String(BigInt(d.folder.ino) + 1n); }],
    ['an entry changed since', (d) => { d.entries[0].ctimeNs = String(BigInt(d.entries[0].ctimeNs) - 1n); }],
    ['a path that is not the folder', (d) => { d.path = path.dirname(d.path); }],
  ];
  for (const [why, tamper] of cases) {
    // New contents each time: a cold start, and contents the store lacks, so an upload shows in the bytes.
    writeFileSync(path.join(dir, 'app/deep/z.txt'), why);
    writeFileSync(path.join(dir, 'big.bin'), randomBytes(256 * 1024));
    const r = await forced(client, dir, tamper);
    assert.equal(r.local, false, why);
    assert.equal(r.out, why);
    assert.ok(r.uploaded > 256 * 1024, `${why}: the contents were uploaded (${r.uploaded} bytes)`);
  }
});
