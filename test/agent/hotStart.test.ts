// Hot starts: after a run, the agent keeps a container of the same kind started ahead of time, and the next
// run like it takes that container. What the program sees must be what a fresh container gives it.
// Real agent, real Docker Engine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { LABELS } from '../../agent/engine/engine';
import type { FinalEvent } from '../../agent/protocol';
import { cleanup, docker, makeContext, outputsTar, runCli, startTestAgent, TestAgent } from './helpers';

const HW = { cpus: 0.5, memoryMiB: 64 };
const dirs: string[] = [];
after(() => cleanup(...dirs));

interface Outcome {
  runId: string;
  start: string;
  out: string;
  final: FinalEvent;
}

async function run(client: AgentClient, dir: string, command?: string[], env: Record<string, string> = {}): Promise<Outcome> {
  const logs: string[] = [];
  let start = '';
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command, env,
    onEvent: (_s, e) => {
      if (e.kind === 'log' && e.stream === 'stdout') logs.push(e.data);
      if (e.kind === 'starting') start = e.start;
    },
  });
  const final = await r.done;
  return { runId: r.runId, start, out: logs.join(''), final };
}

/** Containers of this agent waiting for a run. */
async function waiting(agentId: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.agent}=${agentId}`, `${LABELS.hot}=1`] } });
  return list.filter((c) => c.State === 'running').length;
}

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function withAgent(fn: (agent: TestAgent, client: AgentClient) => Promise<void>): Promise<void> {
  const agent = await startTestAgent();
  dirs.push(agent.dataDir);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  try {
    await fn(agent, client);
  } finally {
    client.close();
    await agent.close();
  }
}

test('the second run of a kind starts hot: same output, its own run id and command, exit code, env, stdin closed, billed from its go', async () => {
  // /usr/local/bin/echo shadows busybox's applet: a hot start must run the image's program, as docker would.
  const dir = makeContext({ 'echo.sh': '#!/bin/sh\necho "image-echo $BYTENITE_RUN_ID $GREETING $*"\ncat\nsleep 1\nexit 7\n' },
    'COPY echo.sh /usr/local/bin/echo\nRUN ["/bin/chmod", "755", "/usr/local/bin/echo"]\nENV PATH=/usr/local/bin:/bin\nENTRYPOINT ["echo"]\n', { uniq: true });
  dirs.push(dir);
  await withAgent(async (agent, client) => {
    const agentId = agent.runs.agentId;
    const first = await run(client, dir, ['a', 'b'], { GREETING: 'hi' });
    assert.equal(first.start, 'cold', JSON.stringify(first.final));
    assert.equal(first.out, `image-echo ${first.runId} hi a b\n`);
    await until('a hot container', 30_000, async () => (await waiting(agentId)) === 1);
    // Let it wait: the run must be billed for its own second, not for the time the container waited.
    await new Promise((r) => setTimeout(r, 2500));

    const second = await run(client, dir, ['a', 'b'], { GREETING: 'hi' });
    assert.equal(second.start, 'hot');
    assert.notEqual(second.runId, first.runId);
    // `cat` returned at once: stdin is empty, as under docker run without -i.
    assert.equal(second.out, `image-echo ${second.runId} hi a b\n`);
    assert.equal(second.final.kind, 'exited');
    assert.equal(second.final.exitCode, 7);
    assert.ok(second.final.durationMs >= 1000 && second.final.durationMs < 2400, `billed ${second.final.durationMs} ms`);
    assert.equal(second.final.start, 'hot');

    // Another command takes the same kind of container: the go message carries it, newlines and all.
    await until('the pool refilled', 30_000, async () => (await waiting(agentId)) === 1);
    const other = await run(client, dir, ['two\nlines', 'x  y', ''], { GREETING: 'hi' });
    assert.equal(other.start, 'hot');
    assert.equal(other.out, `image-echo ${other.runId} hi two\nlines x  y \n`);
    // Another environment is another kind of container: warm, not hot.
    await until('the pool refilled', 30_000, async () => (await waiting(agentId)) === 1);
    const env = await run(client, dir, ['a', 'b'], { GREETING: 'hello' });
    assert.equal(env.start, 'warm');
    assert.equal(env.out, `image-echo ${env.runId} hello a b\n`);

    // The claimed container is removed after its run like any other.
    const named = await docker.listContainers({ all: true, filters: { name: [second.runId] } });
    assert.equal(named.length, 0);
  });
});

test('a hot run keeps its outputs and limits; closing the agent removes the containers still waiting', async () => {
  const limits = 'cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes';
  const dir = makeContext({}, `CMD ["sh", "-c", "echo out > $BYTENITE_OUTPUT_DIR/result.txt; ${limits}; id -u"]\n`, { uniq: true });
  dirs.push(dir);
  let agentId = '';
  await withAgent(async (agent, client) => {
    agentId = agent.runs.agentId;
    const first = await run(client, dir);
    await until('a hot container', 30_000, async () => (await waiting(agentId)) === 1);
    const second = await run(client, dir);
    assert.equal(second.start, 'hot');
    assert.match(first.out, /^\d+\n\d+\n\d+\n$/, 'pids and memory limits, user');
    assert.equal(second.out, first.out, 'the same pids and memory limits and user as a fresh container');
    assert.equal(second.final.outputs.files, 1);
    const out = await outputsTar(client, second.runId);
    assert.ok(out.tar.includes(Buffer.from('out\n')));
    await until('the pool refilled', 30_000, async () => (await waiting(agentId)) === 1);
  });
  const left = await docker.listContainers({ all: true, filters: { label: [`${LABELS.agent}=${agentId}`] } });
  assert.deepEqual(left.map((c) => c.Names), [], 'no container of the closed agent is left');
});

test('the CLI says a run started hot', async () => {
  const dir = makeContext({}, 'CMD ["echo", "from-cli"]\n', { uniq: true });
  dirs.push(dir);
  await withAgent(async (agent) => {
    const tokenFile = path.join(agent.dataDir, 'cli-token');
    writeFileSync(tokenFile, agent.token + '\n', { mode: 0o600 });
    const args = ['run', path.join(dir, 'Dockerfile'), '--cpus', '0.5', '--memory', '64m', '--agent', agent.url, '--token-file', tokenFile];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    await until('a hot container', 30_000, async () => (await waiting(agent.runs.agentId)) === 1);
    const second = await runCli(args);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, 'from-cli\n');
    assert.match(second.stderr, /hot start: image already built, container started ahead of time/);
    assert.match(second.stderr, /exited 0 · hot start/);
  });
});
