// The agent's core cases on Podman's Docker-compatible API (`podman system service`, started here on a
// socket of its own and stopped at the end): logs, exit codes, limits, OOM, cancel, outputs, warm, hot,
// the engine named in the start-up line, and plain answers where Podman cannot do what Docker does
// (BuildKit, GPUs). Needs podman (scripts/setup.sh --tests installs it); without it every case fails, by design.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { LABELS } from '../../agent/engine/engine';
import type { FinalEvent, RunEvent } from '../../agent/protocol';
import { cleanup, jsonEvents, makeContext, runCli, startTestAgent, tmpDir, type TestAgent } from './helpers';

const HW = { cpus: 0.5, memoryMiB: 64 };
const dirs: string[] = [];
let service: ChildProcess;
let sock: string;
let podman: Docker;
let agent: TestAgent;
let client: AgentClient;
let host: string;

before(async () => {
  const which = spawnSync('podman', ['--version']);
  if (which.status !== 0) throw new Error('podman is not installed: run `bash scripts/setup.sh --tests` (it installs Debian\'s podman)');
  const dir = tmpDir('bytenite-podman-');
  dirs.push(dir);
  sock = path.join(dir, 'podman.sock');
  host = `unix://${sock}`;
  // Raising the open-files limit is refused on these machines: no default ulimits for containers.
  const conf = path.join(dir, 'containers.conf');
  writeFileSync(conf, '[containers]\ndefault_ulimits = []\n');
  // Its own folder as working directory: conmon writes an `oom` file there on each OOM kill (see agent/engine/podman.ts).
  service = spawn('podman', ['system', 'service', '--time=0', host], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CONTAINERS_CONF: conf } });
  let err = '';
  service.stderr!.on('data', (d) => (err += d));
  podman = new Docker({ socketPath: sock });
  const end = Date.now() + 30_000;
  for (;;) {
    if (existsSync(sock) && (await podman.ping().then(() => true, () => false))) break;
    if (service.exitCode !== null || Date.now() > end) throw new Error(`podman system service did not answer on ${sock}: ${err}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  agent = await startTestAgent({ engineHost: host });
  dirs.push(agent.dataDir);
  client = await AgentClient.connect(agent.url, { token: agent.token });
});

after(async () => {
  client?.close();
  await agent?.close();
  if (service && service.exitCode === null) {
    const gone = new Promise((r) => service.once('exit', r));
    service.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    if (service.exitCode === null) service.kill('SIGKILL');
  }
  cleanup(...dirs);
});

function ctx(...args: Parameters<typeof makeContext>): string {
  const d = makeContext(...args);
  dirs.push(d);
  return d;
}

/** The CLI's embedded agent on the Podman service. */
const onPodman = () => ({ env: { DOCKER_HOST: host } });

async function run(dir: string, command?: string[], hardware = HW): Promise<{ runId: string; start: string; out: string; events: RunEvent[]; final: FinalEvent }> {
  const events: RunEvent[] = [];
  let start = '';
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware, command,
    onEvent: (_s, e) => {
      events.push(e);
      if (e.kind === 'starting') start = e.start;
    },
  });
  const final = await r.done;
  const out = events.flatMap((e) => (e.kind === 'log' && e.stream === 'stdout' ? [e.data] : [])).join('');
  return { runId: r.runId, start, out, events, final };
}

async function containersOf(runId: string): Promise<number> {
  const labelled = await podman.listContainers({ all: true, filters: { label: [`${LABELS.run}=${runId}`] } });
  const named = await podman.listContainers({ all: true, filters: { name: [`bytenite-${runId}`] } });
  return new Set([...labelled, ...named].map((c) => c.Id)).size;
}

test('the agent names Podman as its engine, with its version, address and builder', async () => {
  const line = await agent.engineDescription();
  assert.match(line ?? '', new RegExp(`^Podman Engine 4\\.\\S+ \\(API [\\d.]+\\) at unix://${sock.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(--engine-host\\); legacy builder`));
  assert.match(line ?? '', /OOM kills/);
});

test('logs arrive complete and in order, stdout and stderr apart; the exit code propagates (CLI)', async () => {
  const dir = ctx();
  const script = 'i=1; while [ $i -le 2000 ]; do echo "out $i"; if [ $((i % 1000)) -eq 0 ]; then echo "err $i" >&2; fi; i=$((i+1)); done; exit 7';
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--', 'sh', '-c', script], onPodman());
  assert.equal(r.code, 7, r.stderr);
  assert.equal(r.stdout, Array.from({ length: 2000 }, (_, i) => `out ${i + 1}`).join('\n') + '\n');
  assert.deepEqual(r.stderr.split('\n').filter((l) => l.startsWith('err ')), ['err 1000', 'err 2000']);
});

test('cold builds with the legacy builder and reports its steps; a second run is warm', async () => {
  const dir = ctx({ 'app.sh': 'echo warm-test\n' }, 'COPY app.sh /app.sh\nCMD ["sh", "/app.sh"]\n', { uniq: true });
  const first = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--json'], onPodman());
  assert.equal(first.code, 0, first.stderr);
  const e1 = jsonEvents(first.stdout).map((e) => e.event);
  const fin1 = e1.at(-1)!;
  assert.equal(fin1.kind === 'exited' && fin1.start, 'cold');
  assert.equal(fin1.kind === 'exited' && fin1.builder, 'legacy');
  const steps = e1.flatMap((e) => (e.kind === 'building' && 'step' in e && e.step ? [e.step] : []));
  assert.ok(steps.length >= 5, `build steps reported: ${JSON.stringify(e1.filter((e) => e.kind === 'building'))}`);
  assert.ok(!JSON.stringify(e1).includes('io.bytenite.'), 'the agent\'s own LABEL steps are not shown');
  const second = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--json'], onPodman());
  assert.equal(second.code, 0, second.stderr);
  const e2 = jsonEvents(second.stdout).map((e) => e.event);
  assert.equal(e2.at(-1)!.kind === 'exited' && (e2.at(-1) as { start?: string }).start, 'warm');
  assert.ok(!e2.some((e) => e.kind === 'building' || e.kind === 'uploading'));
  assert.ok(e2.some((e) => e.kind === 'log' && e.data.includes('warm-test')));
});

test('CPU, memory and pids limits hold inside the container', async () => {
  const dir = ctx();
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--cpus', '0.5', '--memory', '96m', '--',
    'sh', '-c', 'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/pids/pids.max'], onPodman());
  assert.equal(r.code, 0, r.stderr);
  const [quota, period, mem, memsw, pids] = r.stdout.trim().split('\n').map(Number);
  assert.equal(quota / period, 0.5);
  assert.equal(mem, 96 * 1024 * 1024);
  assert.equal(memsw, 96 * 1024 * 1024, 'no swap beyond the limit');
  assert.equal(pids, 1024);
});

test('an OOM kill is reported: exit 137, OOM-killed (Podman itself says false here; the kernel log says which container)', async () => {
  const dir = ctx();
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '32m', '--json', '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=200M', 'count=1'], onPodman());
  assert.equal(r.code, 137, r.stderr);
  const final = jsonEvents(r.stdout).at(-1)!.event;
  assert.equal(final.kind === 'exited' && final.oomKilled, true, JSON.stringify(final));
  // A SIGKILL that is not the memory limit is not called an OOM kill.
  const killed = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '32m', '--json', '--', 'sh', '-c', 'sleep 10 & kill -9 $!; wait; exit 137'], onPodman());
  assert.equal(killed.code, 137, killed.stderr);
  const f2 = jsonEvents(killed.stdout).at(-1)!.event;
  assert.equal(f2.kind === 'exited' && f2.oomKilled, false);
});

test('stats come every second with the limit and a CPU figure within the quota (Podman: polled, CPU over wall-clock time)', async () => {
  const dir = ctx();
  const r = await run(dir, ['sh', '-c', 'end=$(( $(date +%s) + 4 )); while [ $(date +%s) -lt $end ]; do :; done'], { cpus: 0.5, memoryMiB: 64 });
  assert.equal(r.final.kind, 'exited', JSON.stringify(r.final));
  const stats = r.events.flatMap((e) => (e.kind === 'stats' ? [e] : []));
  assert.ok(stats.length >= 2, `stats events: ${stats.length}`);
  for (const s of stats) {
    assert.equal(s.memoryLimitBytes, 64 * 1024 * 1024);
    assert.ok(s.cpuPercent <= 65, `CPU ${s.cpuPercent}% under a 0.5 vCPU quota`);
  }
  assert.ok(stats.some((s) => s.cpuPercent >= 25), `a busy loop shows: ${stats.map((s) => s.cpuPercent).join(', ')}`);
});

test('cancel stops a running container, reports cancelled and leaves no container behind', async () => {
  const dir = ctx();
  let running!: () => void;
  const isRunning = new Promise<void>((r) => (running = r));
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command: ['sh', '-c', 'echo started; sleep 60'],
    onEvent: (_s, e) => { if (e.kind === 'log' && e.data.includes('started')) running(); },
  });
  await isRunning;
  assert.equal(await containersOf(r.runId), 1);
  const t0 = Date.now();
  await client.cancel(r.runId);
  const final = await r.done;
  assert.equal(final.kind, 'cancelled');
  assert.ok(Date.now() - t0 < 15_000, 'stopped within the grace period');
  assert.equal(await containersOf(r.runId), 0, 'no container left');
});

test('files written to the output folder come back', async () => {
  const dir = ctx();
  const out = tmpDir();
  dirs.push(out);
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--out', out, '--',
    'sh', '-c', 'mkdir -p $BYTENITE_OUTPUT_DIR/sub && echo result-42 > $BYTENITE_OUTPUT_DIR/sub/r.txt'], onPodman());
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(path.join(out, 'sub', 'r.txt'), 'utf8'), 'result-42\n');
});

test('the second run of a kind starts hot on Podman: its own run id, command and exit code', async () => {
  const dir = ctx({}, 'CMD ["sh", "-c", "echo default"]\n', { uniq: true });
  const first = await run(dir, ['sh', '-c', 'echo "run $BYTENITE_RUN_ID"; exit 3']);
  assert.equal(first.start, 'cold', JSON.stringify(first.final));
  assert.equal(first.final.kind === 'exited' && first.final.exitCode, 3);
  const end = Date.now() + 30_000;
  for (;;) {
    const hot = await podman.listContainers({ filters: { label: [`${LABELS.agent}=${agent.runs.agentId}`, `${LABELS.hot}=1`] } });
    if (hot.length > 0) break;
    if (Date.now() > end) throw new Error('no hot container was made');
    await new Promise((r) => setTimeout(r, 100));
  }
  const second = await run(dir, ['sh', '-c', 'echo "run $BYTENITE_RUN_ID"; exit 4']);
  assert.equal(second.start, 'hot', JSON.stringify(second.final));
  assert.equal(second.out, `run ${second.runId}\n`);
  assert.equal(second.final.kind === 'exited' && second.final.exitCode, 4);
  assert.equal(await containersOf(second.runId), 0, 'removed after the run');
});

test('what Podman cannot do is said plainly: an agent forced to BuildKit fails the build with the reason', async () => {
  // GPUs: this machine has none, so the catalog refuses a GPU run before the engine is asked (see the README).
  const dir = ctx({}, '', { uniq: true });
  const forced = await startTestAgent({ engineHost: host, builder: 'buildkit' });
  dirs.push(forced.dataDir);
  const c = await AgentClient.connect(forced.url, { token: forced.token });
  try {
    // The build fails as soon as the upload ends, so the client may see its upload cut: the run's own
    // final event says why either way.
    let failed: RunEvent | undefined;
    const onEvent = (_s: unknown, e: RunEvent) => { if (e.kind === 'failed') failed = e; };
    await startRun(c, { contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, onEvent }).then((r) => r.done).catch(() => undefined);
    if (!failed) {
      const [runId] = (await c.list()).map((x) => x.runId);
      await new Promise<void>((resolve) => void c.attach(runId, 0, (_s, e) => { onEvent(_s, e); if (e.kind === 'failed') resolve(); }));
    }
    assert.equal(failed?.kind, 'failed');
    assert.match(failed?.kind === 'failed' ? failed.message : '', /--builder buildkit cannot work on Podman/);
  } finally {
    c.close();
    await forced.close();
  }
});
