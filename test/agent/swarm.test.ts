// The Swarm engine on a real two-node Swarm built on this machine (test/agent/swarmCluster.ts), through the
// real `bytenite agent --engine swarm` and the real CLI. Nothing is skipped: if the cluster cannot be built,
// the test fails and says why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { CLI, ROOT, cleanup, jsonEvents, makeContext, runCli, stopAgent, tmpDir } from './helpers';
import { endSwarmTest, spawnSwarmAgent, startSwarmCluster, SwarmCluster } from './swarmCluster';
import type { Catalog, RunEvent } from '../../agent/protocol';

let cluster: SwarmCluster;
let agent: ChildProcess;
let url = '';
let tokenFile = '';
const dirs: string[] = [];
let agentLog = (): string => '';
const clis: ChildProcess[] = [];

before(async () => {
  cluster = await startSwarmCluster({ workerGpu: 'gpu-h100=1' });
  console.log(`# Swarm test cluster (2 engines, registry, swarm init + join) ready in ${cluster.setupMs} ms`);
  const data = tmpDir('bytenite-swarm-agent-');
  dirs.push(data);
  tokenFile = path.join(data, 'token');
  const started = await spawnSwarmAgent(cluster, data, CLI, ROOT);
  agent = started.child;
  url = started.url;
  agentLog = started.log;
});

after(async () => {
  for (const c of clis) if (c.exitCode === null) c.kill('SIGKILL');
  // The agent cancels what still runs (SIGTERM, SIGKILL after 15 s): it must not keep the cluster (and CI) waiting.
  if (agent) await stopAgent({ child: agent, url });
  await endSwarmTest(cluster, () => cleanup(...dirs));
});

function ctx(files: Record<string, string> = {}, extra = ''): string {
  const d = makeContext(files, extra, { uniq: true });
  dirs.push(d);
  return d;
}

const agentArgs = () => ['--agent', url, '--token-file', tokenFile];

/** Which node's engine holds a container of this run (polled while it runs). */
async function nodeOf(runId: string): Promise<string | undefined> {
  for (const [name, d] of [['manager', cluster.manager], ['worker', cluster.worker]] as const) {
    const list = await d.listContainers({ all: true, filters: { label: [`io.bytenite.run=${runId}`] } }).catch(() => []);
    if (list.length) return name;
  }
  return undefined;
}

/** Starts the CLI with --json and hands back its events as they come. */
function startCli(args: string[]) {
  const child = spawn(process.execPath, [CLI, 'run', '--json', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  clis.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })));
  const events = () => jsonEvents(stdout.split('\n').slice(0, -1).join('\n') + '\n');
  const waitFor = async (pred: (e: { runId: string; event: RunEvent }) => boolean, ms = 60_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = events().find(pred);
      if (hit) return hit;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`not seen; stderr: ${stderr.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { child, done, events, waitFor };
}

/** The node of this run's task, as the manager's API says (polled while it runs). */
async function taskNodeOf(runId: string): Promise<string | undefined> {
  const services = await cluster.manager.listServices({ filters: { label: [`io.bytenite.run=${runId}`] } }).catch(() => []);
  for (const s of services) {
    const tasks = (await cluster.manager.listTasks({ filters: { service: [s.ID!] } }).catch(() => [])) as Array<{ NodeID?: string }>;
    const node = tasks.find((t) => t.NodeID)?.NodeID;
    if (node) return node;
  }
  return undefined;
}

/** Starts a run and reads its task's node through the manager while it runs. */
async function runOnNode(args: string[]) {
  const run = startCli(args);
  const { runId } = await run.waitFor((e) => e.event.kind === 'running');
  let node: string | undefined;
  for (let i = 0; i < 50 && !node; i++) {
    node = await taskNodeOf(runId);
    if (!node) await new Promise((r) => setTimeout(r, 100));
  }
  const res = await run.done;
  const placed = run.events().map((e) => e.event).filter((e): e is Extract<RunEvent, { kind: 'placed' }> => e.kind === 'placed');
  return { res, node, placed };
}

test('the catalog shows both nodes of the Swarm, and what one task can get', async () => {
  const r = await runCli(['hardware', '--json', ...agentArgs()]);
  assert.equal(r.code, 0, r.stderr);
  const catalog = JSON.parse(r.stdout) as Catalog;
  assert.equal(catalog.nodes?.length, 2, r.stdout);
  assert.deepEqual(catalog.nodes!.map((n) => n.role).sort(), ['manager', 'worker']);
  assert.ok(catalog.nodes!.every((n) => n.state === 'ready' && n.cpus > 0 && n.memoryMiB > 0));
  assert.deepEqual(catalog.nodes!.find((n) => n.id === cluster.workerNodeId)?.gpus, [{ type: 'h100', count: 1 }]);
  assert.deepEqual(catalog.gpuOptions.map((g) => [g.type, g.counts]), [['h100', [1]]]);
});

// Endpoints on the Swarm (a replicated service per endpoint) are tested in swarmEndpoints.test.ts.

test('run -i on the Swarm is refused before any build, saying why', async () => {
  const dir = makeContext({}, 'CMD ["sh"]\n', { uniq: true });
  dirs.push(dir);
  const r = await runCli(['run', '-i', path.join(dir, 'Dockerfile'), ...agentArgs()]);
  assert.equal(r.code, 125, r.stderr);
  assert.match(r.stderr, /the Swarm engine has no interactive runs nor exec/);
  assert.doesNotMatch(r.stderr, /build|upload/i, 'nothing was built first');
});

test('a run on the Swarm: logs apart and in order, exit code, cost, outputs, first line timed against one machine', async () => {
  const dir = ctx();
  const script = 'echo out1; echo err1 >&2; i=1; while [ $i -le 200 ]; do echo "line $i"; i=$((i+1)); done; ' +
    'echo result > $BYTENITE_OUTPUT_DIR/result.txt; exit 3';
  const out = tmpDir('bytenite-swarm-out-');
  dirs.push(out);
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), ...agentArgs(), '--memory', '64m', '--out', out, '--json', '--', 'sh', '-c', script]);
  assert.equal(r.code, 3, r.stderr + agentLog().slice(-2000));
  const events = jsonEvents(r.stdout).map((e) => e.event);
  const text = (s: string) => events.filter((e): e is Extract<RunEvent, { kind: 'log' }> => e.kind === 'log' && e.stream === s).map((e) => e.data).join('');
  assert.equal(text('stdout'), 'out1\n' + Array.from({ length: 200 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
  assert.equal(text('stderr'), 'err1\n');
  const final = events.at(-1)!;
  assert.equal(final.kind, 'exited');
  if (final.kind !== 'exited') return;
  assert.equal(final.exitCode, 3);
  // Built on the manager by its BuildKit, through the agent's own session, as on one engine.
  assert.equal(final.start, 'cold');
  assert.equal(final.builder, 'buildkit', JSON.stringify(final));
  assert.ok(final.durationMs > 0 && final.cost.total > 0, JSON.stringify(final));
  assert.equal(final.outputs.files, 1, JSON.stringify(final));
  const files = readdirSync(out, { recursive: true }).map(String);
  assert.ok(files.some((f) => f.endsWith('result.txt')), files.join(', '));

  // Time to the first log line of a warm run: the cluster, then this machine's own engine (embedded agent).
  const firstLine = async (extra: string[]) => {
    const t0 = Date.now();
    const c = startCli([path.join(dir, 'Dockerfile'), '--memory', '64m', ...extra, '--', 'sh', '-c', 'echo first']);
    await c.waitFor((e) => e.event.kind === 'log' && e.event.stream === 'stdout');
    const ms = Date.now() - t0;
    const res = await c.done;
    assert.equal(res.code, 0, res.stderr);
    assert.equal(c.events().find((e) => e.event.kind === 'starting')?.event.kind === 'starting' ? (c.events().find((e) => e.event.kind === 'starting')!.event as { start: string }).start : '', 'warm');
    return ms;
  };
  await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--', 'true']); // build it on this machine too
  const swarmMs = [await firstLine(agentArgs()), await firstLine(agentArgs())];
  const localMs = [await firstLine([]), await firstLine([])];
  console.log(`# time to first log line, warm, CLI start to line: Swarm ${swarmMs.join(', ')} ms; this machine ${localMs.join(', ')} ms`);
});

test('four runs at once spread over both nodes; a GPU run waits for the only GPU, queued with Swarm\'s reason', async () => {
  const dir = ctx();
  const runs = Array.from({ length: 4 }, () => startCli([path.join(dir, 'Dockerfile'), ...agentArgs(), '--cpus', '0.5', '--memory', '64m', '--', 'sh', '-c', 'sleep 3; echo done']));
  const nodes = new Set<string>();
  const ids = await Promise.all(runs.map(async (r) => (await r.waitFor((e) => e.event.kind === 'running')).runId));
  for (let i = 0; i < 20 && nodes.size < 2; i++) {
    for (const id of ids) {
      const n = await nodeOf(id);
      if (n) nodes.add(n);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const r of runs) assert.equal((await r.done).code, 0);
  assert.deepEqual([...nodes].sort(), ['manager', 'worker'], 'Swarm spread the runs over both nodes');

  const holder = startCli([path.join(dir, 'Dockerfile'), ...agentArgs(), '--gpu', 'h100:1', '--memory', '64m', '--', 'sh', '-c', 'sleep 4; echo gpu $DOCKER_RESOURCE_GPU_H100']);
  const held = await holder.waitFor((e) => e.event.kind === 'running');
  assert.equal(await nodeOf(held.runId), 'worker', 'the GPU run went to the node that has the GPU');
  const waiter = startCli([path.join(dir, 'Dockerfile'), ...agentArgs(), '--gpu', 'h100:1', '--memory', '64m', '--', 'echo', 'second']);
  const queued = await waiter.waitFor((e) => e.event.kind === 'queued');
  assert.match((queued.event as { reason?: string }).reason ?? '', /Swarm: .*(no suitable node|insufficient)/i);
  const [a, b] = await Promise.all([holder.done, waiter.done]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.match(b.stdout, /second/);

  const refused = await runCli(['run', path.join(dir, 'Dockerfile'), ...agentArgs(), '--gpu', 'h100:2']);
  assert.equal(refused.code, 125);
  assert.match(refused.stderr, /h100/);
});

test('a 4-task fan-out spreads over both nodes; every task\'s logs and outputs come back; the cost adds up', async () => {
  const dir = ctx();
  const out = tmpDir('bytenite-swarm-fanout-');
  dirs.push(out);
  const script = 'i=1; while [ $i -le 20 ]; do echo "t$BYTENITE_TASK_INDEX/$BYTENITE_TASK_COUNT line $i"; i=$((i+1)); done; ' +
    'echo "result $BYTENITE_TASK_INDEX" > $BYTENITE_OUTPUT_DIR/r.txt; sleep 3; [ $BYTENITE_TASK_INDEX -eq 2 ] && exit 4; exit 0';
  const run = startCli([path.join(dir, 'Dockerfile'), ...agentArgs(), '--parallel', '4', '--cpus', '0.5', '--memory', '64m', '--out', out, '--', 'sh', '-c', script]);
  const { runId } = await run.waitFor((e) => e.event.kind === 'running');
  // Where each task's container is, while they run (label io.bytenite.task).
  const placed = new Map<string, string>();
  for (let i = 0; i < 30 && placed.size < 4; i++) {
    for (const [name, d] of [['manager', cluster.manager], ['worker', cluster.worker]] as const) {
      const list = await d.listContainers({ all: true, filters: { label: [`io.bytenite.run=${runId}`] } }).catch(() => []);
      for (const c of list) placed.set(c.Labels['io.bytenite.task'], name);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const res = await run.done;
  assert.equal(res.code, 4, res.stderr + agentLog().slice(-2000));
  assert.deepEqual([...placed.keys()].sort(), ['0', '1', '2', '3'], 'every task had a container');
  assert.deepEqual([...new Set(placed.values())].sort(), ['manager', 'worker'], 'Swarm placed the tasks on both nodes');
  const events = run.events().map((e) => e.event);
  for (let t = 0; t < 4; t++) {
    const text = events.filter((e): e is Extract<RunEvent, { kind: 'log' }> => e.kind === 'log' && e.task === t && e.stream === 'stdout').map((e) => e.data).join('');
    assert.equal(text, Array.from({ length: 20 }, (_, i) => `t${t}/4 line ${i + 1}\n`).join(''), `task ${t}'s logs (on the ${placed.get(String(t))})`);
    // The worker's outputs come back through its engine (--node-engine), the manager's through the manager.
    assert.equal(readFileSync(path.join(out, `task-${t}`, 'r.txt'), 'utf8'), `result ${t}\n`, `task ${t}'s output (on the ${placed.get(String(t))})`);
  }
  const final = events.at(-1)!;
  assert.equal(final.kind, 'exited', JSON.stringify(final));
  if (final.kind !== 'exited') return;
  assert.deepEqual(final.tasks!.map((t) => t.exitCode), [0, 0, 4, 0]);
  // Each task slept 3 s; Swarm's task times come from the node and can read a few ms short of it.
  assert.ok(final.tasks!.every((t) => t.durationMs >= 2900 && t.cost.total > 0), JSON.stringify(final.tasks));
  const sum = final.tasks!.reduce((a, t) => a + t.cost.total, 0);
  assert.ok(Math.abs(final.cost.total - sum) < 1e-12, `run cost ${final.cost.total} = sum of the tasks' ${sum}`);

  // Wall time of a warm fan-out against one task of the same work, CLI start to exit (for the README).
  const time = async (extra: string[]) => {
    const t0 = Date.now();
    const r = await runCli(['run', path.join(dir, 'Dockerfile'), ...agentArgs(), ...extra, '--cpus', '0.5', '--memory', '64m', '--', 'sh', '-c', 'sleep 3']);
    assert.equal(r.code, 0, r.stderr);
    return Date.now() - t0;
  };
  const one = await time([]);
  const four = await time(['--parallel', '4']);
  console.log(`# Swarm, warm, 'sleep 3' per task, 0.5 vCPU each, CLI start to exit: 1 task ${one} ms; 4 tasks ${four} ms`);
});

test('a volume stays on its node: the next run reads what the last wrote, on the same node, and the events say so; a drained node is refused', async () => {
  const dir = ctx();
  const short = (id: string) => id.slice(0, 12);
  // The first run: the volume is new, Swarm places it (on the worker: only it has the GPU), and it is made there.
  const first = await runOnNode([path.join(dir, 'Dockerfile'), ...agentArgs(), '--gpu', 'h100:1', '--memory', '64m', '-v', 'notes:/data', '--',
    'sh', '-c', 'echo kept > /data/f; sleep 1']);
  assert.equal(first.res.code, 0, first.res.stderr + agentLog().slice(-2000));
  assert.equal(first.node, cluster.workerNodeId);
  assert.equal(first.placed.length, 1, JSON.stringify(first.placed));
  assert.equal(first.placed[0].nodeId, cluster.workerNodeId);
  assert.match(first.placed[0].message, new RegExp(`volume notes is new: Swarm placed the run on node \\S+ \\(${short(cluster.workerNodeId)}\\)`));
  // Then without the GPU (either node could take them): each is placed where the volume is, and reads it back.
  for (let i = 0; i < 2; i++) {
    const next = await runOnNode([path.join(dir, 'Dockerfile'), ...agentArgs(), '--memory', '64m', '-v', 'notes:/data:ro', '--', 'sh', '-c', 'cat /data/f; sleep 1']);
    assert.equal(next.res.code, 0, next.res.stderr);
    assert.match(next.res.stdout, /kept/);
    assert.equal(next.node, cluster.workerNodeId, 'the run went to the node that holds the volume');
    assert.deepEqual(next.placed.map((e) => [e.volumes, e.nodeId]), [[['notes'], cluster.workerNodeId]]);
    assert.match(next.placed[0].message, new RegExp(`^volume notes is on node \\S+ \\(${short(cluster.workerNodeId)}\\): the run is placed there$`));
  }
  const plain = await runCli(['run', path.join(dir, 'Dockerfile'), ...agentArgs(), '--memory', '64m', '-v', 'notes:/data:ro', '--', 'cat', '/data/f']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, 'kept\n');
  assert.match(plain.stderr, /volume notes is on node \S+ \(\w+\): the run is placed there/, 'the CLI shows where it went');
  // Two runs of a new volume at once (read-only: they may share it): Swarm would spread them, but the second
  // waits for the first's placement and goes to the same node, so the volume is never made twice.
  const pair = await Promise.all([0, 1].map(() => runOnNode([path.join(dir, 'Dockerfile'), ...agentArgs(), '--memory', '64m', '-v', 'shared:/s:ro', '--', 'sh', '-c', 'sleep 2'])));
  for (const p of pair) assert.equal(p.res.code, 0, p.res.stderr);
  assert.ok(pair[0].node && pair[0].node === pair[1].node, `both on one node: ${pair.map((p) => p.node).join(', ')}`);
  assert.deepEqual(pair.map((p) => p.placed.length), [1, 1]);
  const made = [...(await cluster.manager.listVolumes({ filters: { label: ['io.bytenite.volume=shared'] } })).Volumes ?? [],
    ...(await cluster.worker.listVolumes({ filters: { label: ['io.bytenite.volume=shared'] } })).Volumes ?? []];
  assert.equal(made.length, 1, 'made once');
  // Removed on the node that holds it, through that node's engine (--node-engine for the worker).
  const rm = await runCli(['volume', 'rm', 'shared', ...agentArgs()]);
  assert.equal(rm.code, 0, rm.stderr);
  const left = [...(await cluster.manager.listVolumes({ filters: { label: ['io.bytenite.volume=shared'] } })).Volumes ?? [],
    ...(await cluster.worker.listVolumes({ filters: { label: ['io.bytenite.volume=shared'] } })).Volumes ?? []];
  assert.deepEqual(left.map((v) => v.Name), []);

  const listed = await runCli(['volumes', '--json', ...agentArgs()]);
  assert.equal(listed.code, 0, listed.stderr);
  const notes = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; sizeBytes: number }).find((v) => v.name === 'notes');
  assert.ok(notes && notes.sizeBytes > 0, listed.stdout);
  assert.ok(!listed.stdout.includes('"name":"shared"'), listed.stdout);

  // Drained, the worker keeps the volume but takes no task: refused before anything is built, naming the node.
  const node = cluster.manager.getNode(cluster.workerNodeId);
  const spec = async () => (await node.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
  const drained = await spec();
  await node.update({ ...drained.Spec, Availability: 'drain', version: drained.Version.Index });
  try {
    const refused = await runCli(['run', path.join(dir, 'Dockerfile'), ...agentArgs(), '--memory', '64m', '-v', 'notes:/data', '--', 'cat', '/data/f']);
    assert.equal(refused.code, 125, refused.stderr);
    assert.match(refused.stderr, new RegExp(`volume notes is on node \\S+ \\(${short(cluster.workerNodeId)}\\), which is drained: `));
    assert.match(refused.stderr, /never makes an empty one elsewhere/);
  } finally {
    const now = await spec();
    await node.update({ ...now.Spec, Availability: 'active', version: now.Version.Index });
  }
  // No empty copy of it was made on the manager.
  const onManager = await cluster.manager.listVolumes({ filters: { label: ['io.bytenite.volume=notes'] } });
  assert.deepEqual((onManager.Volumes ?? []).map((v) => v.Name), []);
  const onWorker = await cluster.worker.listVolumes({ filters: { label: ['io.bytenite.volume=notes'] } });
  assert.equal((onWorker.Volumes ?? []).length, 1, 'made on the worker with the tenant\'s labels');
});

test('losing the worker during a run is reported plainly on that run; nothing hangs', async () => {
  const dir = ctx();
  const t0 = Date.now();
  const run = startCli([path.join(dir, 'Dockerfile'), ...agentArgs(), '--gpu', 'h100:1', '--memory', '64m', '--', 'sh', '-c', 'echo started; sleep 120']);
  const started = await run.waitFor((e) => e.event.kind === 'log' && e.event.stream === 'stdout');
  assert.equal(await nodeOf(started.runId), 'worker');
  const s0 = Date.now();
  await cluster.stopWorker();
  const res = await run.done;
  const reportedMs = Date.now() - s0;
  console.log(`# worker stopped: the run was reported ${reportedMs} ms later (run took ${Date.now() - t0} ms in all)`);
  assert.equal(res.code, 125, res.stderr);
  const final = jsonEvents(res.stdout).at(-1)!.event;
  assert.equal(final.kind, 'failed');
  if (final.kind !== 'failed') return;
  assert.equal(final.code, 'engine');
  assert.match(final.message, /lost node .*state down.*outcome.*unknown/);
  assert.ok(reportedMs < 30_000, `reported after ${reportedMs} ms`);
});

test('a volume on a stopped node: the run is refused, naming the node; no empty volume is made elsewhere', async () => {
  // The worker was stopped by the test before; the volume `notes` is on it.
  const dir = ctx();
  const refused = await runCli(['run', path.join(dir, 'Dockerfile'), ...agentArgs(), '--memory', '64m', '-v', 'notes:/data', '--', 'cat', '/data/f']);
  assert.equal(refused.code, 125, refused.stderr);
  assert.match(refused.stderr, new RegExp(`volume notes is on node \\S+ \\(${cluster.workerNodeId.slice(0, 12)}\\), which is (down|unknown|disconnected)`));
  const onManager = await cluster.manager.listVolumes({ filters: { label: ['io.bytenite.volume=notes'] } });
  assert.deepEqual((onManager.Volumes ?? []).map((v) => v.Name), []);
});
