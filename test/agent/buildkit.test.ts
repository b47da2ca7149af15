// BuildKit builds through the agent's own session, against the real engine: what a client sees of a run
// (its events, its output, the files in its image), and what the agent sent the engine (DiffCopy DATA bytes).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { writeFileSync } from 'node:fs';
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
  // The client sees the engine's pull as upload progress while the run is building, ending at what was sent.
  const toEngine = (r: typeof first) => r.events.filter((e) => e.kind === 'uploading' && e.to === 'engine');
  assert.deepEqual(toEngine(first).at(-1), { kind: 'uploading', to: 'engine', bytesDone: firstBytes, bytesTotal: firstBytes });
  assert.deepEqual(toEngine(second).at(-1), { kind: 'uploading', to: 'engine', bytesDone: 1024 * 1024, bytesTotal: 1024 * 1024 });
  const kinds = second.events.map((e) => e.kind);
  assert.ok(kinds.indexOf('building') < kinds.lastIndexOf('uploading') && kinds.lastIndexOf('uploading') < kinds.indexOf('starting'),
    `the last transfer figures come during the build: ${kinds.join(' ')}`);
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

test('a build secret is readable in RUN, absent from the image, the agent\'s data folder and its log; an unknown optional one is skipped', async () => {
  const logged: string[] = [];
  const log = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { logged.push(String(c)); cb(); } }));
  const agent = await startTestAgent({ engine: new DockerEngine(undefined, { hotPool: 0 }), log });
  agents.push(agent);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  clients.push(client);
  const value = `s3cr3t-${hex(12)}`;
  const dir = makeContext({}, [
    `RUN --mount=type=secret,id=tok sh -c 'md5sum /run/secrets/tok | cut -c1-32 > /md5; echo "sees ${hex(3)} $(cat /run/secrets/tok)"'`,
    `RUN --mount=type=secret,id=absent-${hex(3)} sh -c 'ls /run/secrets/ 2>/dev/null | wc -l > /absent'`,
    '',
  ].join('\n'), { uniq: true });
  dirs.push(dir);
  let build = '';
  let out = '';
  let image = '';
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command: ['cat', '/md5', '/absent'],
    buildSecrets: { tok: Buffer.from(value).toString('base64') },
    onEvent: (_s, e) => {
      if (e.kind === 'log' && e.stream === 'build') build += e.data;
      if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
      if (e.kind === 'starting') image = e.image;
    },
  });
  const final = await r.done;
  assert.equal(final.exitCode, 0, JSON.stringify(final));
  const md5 = createHash('md5').update(value).digest('hex');
  assert.equal(out, `${md5}\n0\n`, 'RUN read the secret; the unknown optional secret was not mounted');
  assert.ok(!build.includes(value), 'the build output shows *** for the secret');
  assert.match(build, /sees [0-9a-f]{6} \*\*\*/);
  const saved = execFileSync('/usr/bin/docker', ['save', image], { maxBuffer: 1 << 30 });
  assert.equal(saved.includes(Buffer.from(value)), false, 'not in any layer or in the history');
  const grep = spawnSync('grep', ['-rlF', value, agent.dataDir]);
  assert.equal(grep.stdout.toString(), '', 'not in the agent\'s data folder');
  assert.equal(logged.join('').includes(value), false, 'not in the agent\'s log');
});

test('--target builds up to that stage, an unused stage is not built, two independent stages overlap, --no-cache builds cold', async () => {
  const { client } = await agentWith();
  const t = hex(4);
  const base = 'FROM scratch AS base\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\n';
  const stage = (name: string) => `FROM base AS ${name}\nRUN sh -c 'cut -d" " -f1 /proc/uptime > /start; sleep 1; echo ${name}-${t}; cut -d" " -f1 /proc/uptime > /end'\n`;
  const dockerfile = `${base}${stage('one')}${stage('two')}FROM base AS unused\nRUN echo unused-${t}\n` +
    'FROM base AS final\nCOPY --from=one /start /one.start\nCOPY --from=one /end /one.end\nCOPY --from=two /start /two.start\nCOPY --from=two /end /two.end\n' +
    `FROM base AS other\nRUN echo other-${t} > /which\n`;
  const dir = makeContext({}, '');
  dirs.push(dir);
  writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  const show = ['cat', '/one.start', '/one.end', '/two.start', '/two.end'];
  const finalRun = await runWith(client, dir, { target: 'final' }, show);
  assert.equal(finalRun.final.exitCode, 0, JSON.stringify(finalRun.final));
  const [s1, e1, s2, e2] = finalRun.out.trim().split('\n').map(Number); // the host's uptime, in 1/100 s
  assert.ok(s1 < e2 && s2 < e1, `the two stages ran at the same time (${s1}..${e1}, ${s2}..${e2})`);
  assert.ok(!finalRun.build.includes(`unused-${t}`) && !finalRun.build.includes(`other-${t}`), 'unused stages were not built');
  assert.ok(!finalRun.events.some((e) => e.kind === 'building' && /unused|other/.test(e.instruction)));

  const other = await runWith(client, dir, { target: 'other' }, ['cat', '/which']);
  assert.equal(other.final.start, 'cold', 'another target is another image');
  assert.equal(other.out, `other-${t}\n`);
  const warm = await runWith(client, dir, { target: 'other' }, ['cat', '/which']);
  assert.equal(warm.final.start, 'warm');
  const cold = await runWith(client, dir, { target: 'other', noCache: true }, ['cat', '/which']);
  assert.equal(cold.final.start, 'cold', '--no-cache builds cold whatever the digest');
  assert.equal(cold.final.cachedSteps, 0, 'and without the build cache');
  assert.ok(cold.final.steps > 0);
});

async function runWith(client: AgentClient, dir: string, opts: { target?: string; noCache?: boolean }, command: string[]) {
  let out = '';
  let build = '';
  const events: RunEvent[] = [];
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command, ...opts,
    onEvent: (_s, e) => {
      events.push(e);
      if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
      if (e.kind === 'log' && e.stream === 'build') build += e.data;
    },
  });
  return { final: await r.done, out, build, events };
}

test('what the engine\'s frontend refuses, and a failing RUN, fail the run as a build error in the engine\'s words', async () => {
  const { client } = await agentWith();
  // Heredocs need a newer Dockerfile frontend than a 20.10 engine has built in.
  const heredoc = makeContext({}, `RUN <<EOF\necho ${hex(3)}\nEOF\n`, { uniq: true });
  const failing = makeContext({}, `RUN sh -c 'echo about to fail ${hex(3)}; exit 3'\n`, { uniq: true });
  dirs.push(heredoc, failing);
  const a = await run(client, heredoc, ['true']);
  assert.equal(a.final.kind, 'failed', JSON.stringify(a.final));
  if (a.final.kind === 'failed') {
    assert.equal(a.final.code, 'build');
    assert.match(a.final.message, /dockerfile parse error/, 'the 20.10 frontend\'s own words');
  }
  const b = await run(client, failing, ['true']);
  assert.equal(b.final.kind, 'failed', JSON.stringify(b.final));
  if (b.final.kind === 'failed') {
    assert.equal(b.final.code, 'build');
    assert.match(b.final.message, /exit code: 3/);
  }
  assert.match(b.build, /about to fail/);
});

test('a Dockerfile in a subfolder builds with the whole context (docker build -f services/api/Dockerfile .)', async () => {
  const { client } = await agentWith();
  const dir = makeContext({ 'shared/lib.txt': `shared ${hex(4)}\n`, '.dockerignore': 'ignored.txt\n', 'ignored.txt': 'no' }, '');
  dirs.push(dir);
  const sub = path.join(dir, 'services/api');
  execFileSync('mkdir', ['-p', sub]);
  writeFileSync(path.join(sub, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY shared/lib.txt /lib.txt\nCOPY . /ctx\n');
  let out = '';
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(sub, 'Dockerfile'), hardware: HW, command: ['/bin/busybox', 'sh', '-c', 'cat /lib.txt; ls /ctx /ctx/services/api'],
    onEvent: (_s, e) => { if (e.kind === 'log' && e.stream === 'stdout') out += e.data; },
  });
  const final = await r.done;
  assert.equal(final.exitCode, 0, JSON.stringify(final));
  assert.match(out, /^shared [0-9a-f]{8}\n/);
  assert.match(out, /Dockerfile/);
  assert.doesNotMatch(out, /ignored\.txt/);
});
