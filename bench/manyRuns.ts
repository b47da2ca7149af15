/**
 * Benchmark 4, many runs: 50 short runs submitted at once through 5 clients (10 each), on one agent process.
 * Each run asks 0.5 vCPU, so the host's vCPUs allow `slots` at a time; the least time the host's capacity
 * allows is ceil(50 / slots) waves of one run's own duration (the median `runMs` the agent reports). Every
 * run must exit 0 with all its lines, its events numbered without gaps. The capacity bound is this benchmark's
 * baseline (computed, pair by pair, from the batch's own runMs). For scale, the same 50 containers through
 * `docker run --rm`, `slots` at a time (a shell loop), are measured once after the pairs: counting them in every
 * pair would add about 4 minutes to the suite on a 2-core machine.
 */
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
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
    for (let i = 0; i <= PAIRS; i++) {
      agent.resetPeak();
      const a = await byteniteBatch(agent, ctx);
      const peak = agent.peakMiB();
      const bound = Math.ceil(RUNS / slots) * median(a.runMs);
      log(`many runs: ${i ? `pair ${i}/${PAIRS}` : 'warm-up'}: ${a.ms.toFixed(0)} ms, bound ${bound.toFixed(0)} ms, agent peak ${peak.toFixed(0)} MiB, ${a.hot} of ${RUNS} hot`);
      if (i === 0) continue;
      xs.push(a.ms);
      bounds.push(bound);
      peaks.push(peak);
      hots.push(a.hot);
    }
    const name = `4. many runs: ${RUNS} × ${CPUS} vCPU (${SLEEP_S} s + ${LINES} lines each) at once, ${slots} fit, until the last finishes`;
    const vsBound = comparison(`${name}, vs the capacity bound`, xs, bounds, { ratio: 1.3 });
    vsBound.note = `bound = ceil(${RUNS}/${slots}) × median runMs; median ${median(hots)} of ${RUNS} runs started hot`;
    const b = await dockerBatch(tag, slots);
    log(`many runs: docker run ${slots} at a time: ${b.ms.toFixed(0)} ms`);
    const vsDocker = comparison(`${name}, vs docker run ${slots} at a time`, [median(xs)], [b.ms]);
    vsDocker.note = 'docker measured once, for scale; ByteNite = median of the pairs';
    return [vsBound, vsDocker, figure('4. many runs: agent peak memory (VmHWM)', 'MiB', peaks, undefined, `max ${Math.max(...peaks).toFixed(0)} MiB`)];
  } finally {
    await agent.stop();
    removeImage(tag);
  }
}
