/**
 * Benchmark 4, many runs: 50 short runs submitted at once through 5 clients (10 each), on one agent process.
 * Each run asks 0.5 vCPU, so the host's vCPUs allow `slots` at a time. Every run must exit 0 with all its
 * lines, its events numbered without gaps. The baseline is the best plain Docker does with the same 50
 * containers on this machine: `docker run --rm` 2, 4 and 8 at a time, the fastest of the three (issue 16's
 * definition), measured once after the pairs (in every pair it would add minutes on a 2-core machine). The
 * capacity bound (ceil(50 / slots) waves of one run's own `runMs`) is kept as a row for scale. The agent's CPU
 * time per run (utime + stime from /proc, over the batch, divided by 50) and its peak memory are reported.
 *
 * The floor: the engine's own CPU per container lifecycle (bench/engineCpu.ts: dockerd, containerd and the
 * shims, with the runc calls they wait for) over docker's best batch, less the command's own CPU (run natively,
 * the same busybox applets), divided by the runs; 50 runs of that on this machine's cores cannot take less
 * than 50 × it / cores, whatever the client does. The same engine CPU is read over each of ByteNite's batches.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { counted, measureEngineCpu, ownChildrenCpuMs } from './engineCpu';
import { AgentClient } from '../agent/client/agentClient';
import { startRun } from '../agent/client/startRun';
import type { FinalEvent } from '../agent/protocol';
import {
  AgentProcess, BENCH_ID, BENCH_LABEL, DOCKER, DOCKER_ENV, PAIRS, Result, comparison, dockerBuild, figure, log, makeContext,
  median, removeImage, runProcess, startAgentProcess, tempDir,
} from './lib';

const RUNS = Number(process.env.BENCH_MANY_RUNS ?? 50);
const CLIENTS = 5;
const CPUS = 0.5;
const SLEEP_S = 0.5;
const LINES = 200;
const command = (i: number) => ['sh', '-c', `seq 1 ${LINES} | sed 's/^/run ${i} line /'; sleep ${SLEEP_S}`];
const expected = (i: number) => Array.from({ length: LINES }, (_, k) => `run ${i} line ${k + 1}\n`).join('');

interface Batch { ms: number; runMs: number[]; hot: number }

/** Settled engine work after a batch (containers removed, shims gone, a hot pool refilled) counts with it. */
const SETTLE_MS = 1000;

/** Engine CPU ms over `batch` and the settle after it; NaN where it could not be read (see engineCpu.ts). */
async function withEngineCpu<T>(batch: () => Promise<T>): Promise<{ result: T; engineMs: number }> {
  const cpu = measureEngineCpu();
  const result = await batch();
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  return { result, engineMs: cpu.stop() };
}

/**
 * The CPU of the runs' own command, per run, as the container runs it (busybox's sh, seq, sed, sleep) but
 * natively: what the engine's reading holds that is not the engine's (a shim reaps its container's processes).
 */
async function commandCpuPerRun(work: string): Promise<number> {
  const bin = path.join(work, 'native-bin');
  mkdirSync(bin, { recursive: true });
  for (const applet of ['sh', 'seq', 'sed', 'sleep']) symlinkSync('/bin/busybox', path.join(bin, applet));
  const n = 10;
  const before = ownChildrenCpuMs();
  await Promise.all(Array.from({ length: n }, (_, i) => new Promise<void>((resolve, reject) => {
    const child = spawn(path.join(bin, 'sh'), command(i).slice(1), { env: { PATH: bin }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`native run ${i} → ${code}`))));
  })));
  return (ownChildrenCpuMs() - before) / n;
}

async function byteniteBatch(agent: AgentProcess, ctx: string): Promise<Batch> {
  const token = readFileSync(agent.tokenFile, 'utf8').trim();
  const t0 = performance.now();
  let hot = 0;
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => AgentClient.connect(agent.url, { token, clientName: 'bytenite-bench/many' })));
  try {
    const runs = await Promise.all(Array.from({ length: RUNS }, async (_, i) => {
      let out = '';
      let seq = 0;
      let gap: string | undefined;
      const started = await startRun(clients[i % CLIENTS], {
        contextDir: ctx, dockerfile: path.join(ctx, 'Dockerfile'), hardware: { cpus: CPUS, memoryMiB: 64 }, command: command(i),
        name: `many ${i}`,
        onEvent: (s, e) => {
          if (s !== seq + 1) gap ??= `seq ${s} after ${seq}`;
          seq = s;
          if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
        },
      });
      const final: FinalEvent = await started.done;
      if (gap || final.kind !== 'exited' || final.exitCode !== 0) throw new Error(`run ${i}: ${gap ?? `${final.kind} ${final.exitCode}`}`);
      if (final.start === 'cold') throw new Error(`run ${i} was cold: its image should have been found`);
      if (final.start === 'hot') hot++;
      if (out !== expected(i)) throw new Error(`run ${i}: ${out.length} bytes of logs, want ${expected(i).length}`);
      return final.phases.runMs;
    }));
    return { ms: performance.now() - t0, runMs: runs, hot };
  } finally {
    for (const c of clients) c.close();
  }
}

async function dockerBatch(tag: string, slots: number): Promise<Batch> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < RUNS) {
      const i = next++;
      const r = await runProcess(DOCKER, ['run', '--rm', '--label', BENCH_LABEL, '--cpus', String(CPUS), '--memory', '64m', tag, ...command(i)], { env: DOCKER_ENV });
      if (r.stdout !== expected(i)) throw new Error(`docker run ${i}: wrong output`);
    }
  };
  await Promise.all(Array.from({ length: slots }, worker));
  return { ms: performance.now() - t0, runMs: [], hot: 0 };
}

export async function benchManyRuns(): Promise<Result[]> {
  const work = tempDir();
  const ctx = makeContext(path.join(work, 'ctx'), 'CMD ["true"]\n');
  const tag = `bytenite-bench-many:${BENCH_ID}`;
  const slots = Math.floor(os.cpus().length / CPUS);
  const agent = await startAgentProcess(path.join(work, 'data'));
  try {
    dockerBuild(ctx, tag);
    // The agent builds its image once (not counted): the batch measures starts, not a build.
    await runProcess(process.execPath, [path.join(__dirname, '..', 'dist', 'bytenite.js'), 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--cpus', '0.5', '--memory', '64m']);
    const xs: number[] = [];
    const bounds: number[] = [];
    const peaks: number[] = [];
    const hots: number[] = [];
    const cpuPerRun: number[] = [];
    const engineByteNite: number[] = [];
    for (let i = 0; i <= PAIRS; i++) {
      agent.resetPeak();
      const cpu0 = cpuMs(agent.pid);
      const { result: a, engineMs } = await withEngineCpu(() => byteniteBatch(agent, ctx));
      const peak = agent.peakMiB();
      if (i > 0) cpuPerRun.push((cpuMs(agent.pid) - cpu0) / RUNS);
      if (i > 0) engineByteNite.push(counted(engineMs, `ByteNite's batch ${i}`));
      const bound = Math.ceil(RUNS / slots) * median(a.runMs);
      log(`many runs: ${i ? `pair ${i}/${PAIRS}` : 'warm-up'}: ${a.ms.toFixed(0)} ms, bound ${bound.toFixed(0)} ms, agent peak ${peak.toFixed(0)} MiB, ${a.hot} of ${RUNS} hot`);
      if (i === 0) continue;
      xs.push(a.ms);
      bounds.push(bound);
      peaks.push(peak);
      hots.push(a.hot);
    }
    const name = `4. many runs: ${RUNS} × ${CPUS} vCPU (${SLEEP_S} s + ${LINES} lines each) at once, ${slots} fit, until the last finishes`;
    const vsBound = comparison(`${name}, vs the capacity bound`, xs, bounds);
    vsBound.note = `bound = ceil(${RUNS}/${slots}) × median runMs; median ${median(hots)} of ${RUNS} runs started hot; for scale`;
    const plain: Array<{ at: number; ms: number; engineMs: number }> = [];
    for (const at of [2, 4, 8]) {
      const { result: b, engineMs } = await withEngineCpu(() => dockerBatch(tag, at));
      log(`many runs: docker run ${at} at a time: ${b.ms.toFixed(0)} ms, engine CPU ${engineMs.toFixed(0)} ms`);
      plain.push({ at, ms: b.ms, engineMs: counted(engineMs, `docker run ${at} at a time`) });
    }
    const best = plain.reduce((a, b) => (b.ms < a.ms ? b : a));
    const vsDocker = comparison(`${name}, vs the best docker run --rm does (2, 4 or 8 at a time)`, xs, xs.map(() => best.ms), { ratio: 0.8 });
    vsDocker.note = `docker: ${plain.map((p) => `${p.at} at a time ${(p.ms / 1000).toFixed(1)} s`).join(', ')}; the best (${best.at}) measured once, after the pairs`;
    // The floor: the engine's CPU per lifecycle in docker's best batch, less the command's own.
    const own = await commandCpuPerRun(work);
    const enginePerRun = best.engineMs / RUNS - own;
    const cores = os.cpus().length;
    const floorMs = (RUNS * enginePerRun) / cores;
    const cpuFloor = comparison(`4. many runs FLOOR: the engine's CPU, ${RUNS} × ${enginePerRun.toFixed(0)} ms per container lifecycle / ${cores} cores`,
      [floorMs], [best.ms]);
    cpuFloor.note = `ratio to the target row's baseline (docker ${best.at} at a time); a lower bound on the batch from engine CPU alone: ` +
      `dockerd + containerd + shims (+ the runc calls they wait for), /proc utime+stime (+cutime+cstime), over docker's best batch and ${SETTLE_MS / 1000} s after, ` +
      `${(best.engineMs / RUNS).toFixed(0)} ms per run less ${own.toFixed(1)} ms of the command's own CPU (run natively); per run at 2/4/8: ` +
      `${plain.map((p) => (p.engineMs / RUNS).toFixed(0)).join('/')} ms; not the docker CLI's CPU, not the client's or the agent's, ` +
      'not waits (the engine\'s own serialisation); counts whatever else the engine and pid 1 did meanwhile';
    const engineRow = comparison('4. many runs: the engine\'s CPU per run in ByteNite\'s batch (vs in docker\'s best batch)',
      engineByteNite.map((ms) => ms / RUNS), engineByteNite.map(() => best.engineMs / RUNS));
    engineRow.note = `in all ${(median(engineByteNite) / 1000).toFixed(1)} s per batch against ${(best.engineMs / 1000).toFixed(1)} s; ` +
      `dockerd + containerd + shims as in the floor row, over each batch and ${SETTLE_MS / 1000} s after (hot-pool refills included), ` +
      'the command\'s own CPU not subtracted on either side; the agent\'s own CPU is the next row';
    return [
      vsDocker, cpuFloor, engineRow, vsBound,
      figure('4. many runs: agent CPU time per run (utime + stime over the batch / runs)', 'ms', cpuPerRun),
      figure('4. many runs: agent peak memory (VmHWM)', 'MiB', peaks, undefined, `max ${Math.max(...peaks).toFixed(0)} MiB`),
    ];
  } finally {
    await agent.stop();
    removeImage(tag);
  }
}

/** A process's CPU time so far (user + system), ms: /proc/PID/stat fields 14 and 15, in clock ticks of 10 ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
