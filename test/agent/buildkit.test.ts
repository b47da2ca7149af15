// BuildKit builds through the agent's own session, against the real engine: what a client sees of a run
// (its events, its output, the files in its image), and what the agent sent the engine (DiffCopy DATA bytes).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { DockerEngine } from '../../agent/engine/dockerEngine';
import type { BuilderSetting } from '../../agent/build/builderChoice';
import type { FinalEvent, RunEvent } from '../../agent/protocol';
import { cleanup, makeContext, startTestAgent, type TestAgent } from './helpers';

const HW = { cpus: 0.5, memoryMiB: 64 };
const dirs: string[] = [];
const agents: TestAgent[] = [];
const clients: AgentClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const a of agents) await a.close();
  cleanup(...dirs);
});
const hex = (n: number) => randomBytes(n).toString('hex');

/** An agent on the real engine, with a record of every DiffCopy the engine asked for. */
async function agentWith(builder: BuilderSetting = 'auto') {
  const sent: { source: string; files: number; bytes: number }[] = [];
  const engine = new DockerEngine(undefined, { hotPool: 0, builder, onSent: (source, s) => sent.push({ source, ...s }) });
  const agent = await startTestAgent({ engine });
  agents.push(agent);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  clients.push(client);
  return { agent, client, sent };
}

async function run(client: AgentClient, dir: string, command: string[], onEvent?: (e: RunEvent, runId: string) => void) {
  let out = '';
  let build = '';
  const events: RunEvent[] = [];
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command,
    onEvent: (_s, e, runId) => {
      events.push(e);
      if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
      if (e.kind === 'log' && e.stream === 'build') build += e.data;
      onEvent?.(e, runId);
    },
  });
  const final: FinalEvent = await r.done;
  return { final, out, build, events, runId: r.runId };
}

test('BuildKit builds by default, and cache mount contents persist from one build to the next', async () => {
  const { client } = await agentWith();
  const cacheId = `t-${hex(6)}`;
  const dockerfile = (n: string) => `RUN --mount=type=cache,id=${cacheId},target=/cache sh -c 'echo ${n} >> /cache/seen; cp /cache/seen /seen'\n`;
  const first = makeContext({}, dockerfile(hex(4)), { uniq: true });
  const second = makeContext({}, dockerfile(hex(4)), { uniq: true });
  dirs.push(first, second);
  const a = await run(client, first, ['cat', '/seen']);
  assert.equal(a.final.exitCode, 0, JSON.stringify(a.final));
  assert.equal(a.final.builder, 'buildkit');
  assert.equal(a.out.trim().split('\n').length, 1);
  const b = await run(client, second, ['cat', '/seen']);
  assert.equal(b.final.exitCode, 0, JSON.stringify(b.final));
  assert.deepEqual(b.out.trim().split('\n'), [...a.out.trim().split('\n'), b.out.trim().split('\n')[1]], 'the second build found the first one\'s line in the cache');
  assert.ok(b.events.some((e) => e.kind === 'building' && /--mount=type=cache/.test(e.instruction)), 'the RUN step is reported');
});

test('COPY --chmod sets the mode; RUN output comes as build log lines', async () => {
  const { client } = await agentWith();
  // BuildKit caches RUN by its command and parent layers (a LABEL is neither): a token of its own keeps it cold.
  const token = hex(4);
  const dir = makeContext({ 'tool.sh': 'echo hi\n' }, `COPY --chmod=741 tool.sh /tool.sh\nRUN echo "build says hello ${token}"\n`, { uniq: true });
  dirs.push(dir);
  const r = await run(client, dir, ['stat', '-c', '%a', '/tool.sh']);
  assert.equal(r.final.exitCode, 0, JSON.stringify(r.final));
  assert.equal(r.out.trim(), '741');
  assert.match(r.build, new RegExp(`build says hello ${token}`));
});

test('one 1 MB file changed: the engine asks only for that file, and the image holds the new content', async () => {
  const { client, sent } = await agentWith();
  const files: Record<string, string> = {};
  for (let i = 0; i < 8; i++) files[`data/f${i}.bin`] = randomBytes(512 * 1024).toString('hex'); // 1 MiB of text each
  const dir = makeContext(files, 'COPY . /ctx\n', { uniq: true });
  dirs.push(dir);
  const md5 = ['sh', '-c', 'md5sum /ctx/data/f3.bin | cut -c1-32'];
  const first = await run(client, dir, md5);
  assert.equal(first.final.exitCode, 0, JSON.stringify(first.final));
  const firstBytes = sent.filter((s) => s.source === 'context').reduce((n, s) => n + s.bytes, 0);
  assert.ok(firstBytes >= 8 * 1024 * 1024, `the first build sends every file (${firstBytes})`);

  sent.length = 0;
  const changed = randomBytes(512 * 1024).toString('hex');
  writeFileSync(path.join(dir, 'data/f3.bin'), changed);
  const second = await run(client, dir, md5);
  assert.equal(second.final.exitCode, 0, JSON.stringify(second.final));
  assert.equal(second.out.trim(), execFileSync('md5sum', [path.join(dir, 'data/f3.bin')]).toString().slice(0, 32));
  const context = sent.filter((s) => s.source === 'context');
  assert.deepEqual({ files: context.reduce((n, s) => n + s.files, 0), bytes: context.reduce((n, s) => n + s.bytes, 0) },
    { files: 1, bytes: 1024 * 1024 }, JSON.stringify(sent));
});

test('.dockerignore with ! exceptions puts the same files in the image as DOCKER_BUILDKIT=1 docker build', async () => {
  const { client } = await agentWith();
  const tree: Record<string, string> = {
    'app.py': 'a', 'debug.log': 'x', 'keep.log': 'k', 'build/tmp/x.o': 'o', 'build/out/app': 'bin', 'build/out/app.tmp': 't',
    'docs/README.md': 'r', 'docs/guide/intro.md': 'i', 'src/a.tmp': 't', 'src/deep/b.tmp': 't', 'src/deep/c.txt': 'c',
    'secrets/.env': 's', 'node_modules/x/index.js': 'n', 'node_modules/keep/index.js': 'k', 'caf\u00e9/men\u00fc.txt': 'u',
    '.dockerignore': ['*.log', '!keep.log', 'build', '!build/out', '**/*.tmp', 'docs/**', '!docs/README.md', 'secrets/',
      'node_modules/*', '!node_modules/keep', '/busybox-not-there', ''].join('\n'),
  };
  const dir = makeContext(tree, 'COPY . /ctx\n', { uniq: true });
  dirs.push(dir);
  const list = ['sh', '-c', 'cd /ctx && find . | sort'];
  const ours = await run(client, dir, list);
  assert.equal(ours.final.exitCode, 0, JSON.stringify(ours.final));
  const tag = `bytenite-test-ignore:${hex(4)}`;
  execFileSync('/usr/bin/docker', ['build', '-q', '-t', tag, dir], { env: { ...process.env, DOCKER_BUILDKIT: '1' }, stdio: 'pipe' });
  try {
    const theirs = execFileSync('/usr/bin/docker', ['run', '--rm', tag, ...list]).toString();
    assert.equal(ours.out, theirs);
    assert.match(ours.out, /\.\/keep\.log\n/);
    assert.doesNotMatch(ours.out, /debug\.log|secrets|x\.o|\.tmp/);
  } finally {
    execFileSync('/usr/bin/docker', ['rmi', '-f', tag], { stdio: 'ignore' });
  }
});

test('a build cancelled midway is cancelled at the engine: the run says cancelled and nothing keeps running', async () => {
  const { client } = await agentWith();
  const marker = 3000 + Math.floor(Math.random() * 5000);
  const dir = makeContext({}, `RUN sleep ${marker}\n`, { uniq: true });
  dirs.push(dir);
  const r = await run(client, dir, ['true'], (e, runId) => {
    if (e.kind === 'building' && e.instruction.includes(`sleep ${marker}`)) {
      // The step has started: give it a moment to be really running, then cancel.
      setTimeout(() => void client.cancel(runId), 500);
    }
  });
  assert.equal(r.final.kind, 'cancelled', JSON.stringify(r.final));
  // The engine stops the step's process as it cancels; look for it until it is gone (or give up after 20 s).
  let left = '';
  for (let i = 0; i < 40; i++) {
    left = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((l) => l.trim() === `sleep ${marker}`).join('\n');
    if (!left) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  assert.equal(left, '', 'the cancelled step\'s process is gone');
});

test('the legacy builder still builds when forced, and says so', async () => {
  const { client, sent } = await agentWith('legacy');
  const dir = makeContext({ 'a.txt': 'legacy\n' }, 'COPY a.txt /a.txt\n', { uniq: true });
  dirs.push(dir);
  const r = await run(client, dir, ['cat', '/a.txt']);
  assert.equal(r.final.exitCode, 0, JSON.stringify(r.final));
  assert.equal(r.final.builder, 'legacy');
  assert.equal(r.out, 'legacy\n');
  assert.ok(r.events.some((e) => e.kind === 'starting' && e.builder === 'legacy'));
  assert.equal(sent.length, 0, 'no session transfer');
});
