/**
 * Benchmark 1, time from the command to the first line the container prints: `bytenite run` against an
 * agent that is already running vs `docker run --rm` of the same image, alternating run by run.
 * Warm: the image exists for this context. Cold: a fresh file in the context forces upload + build
 * (layers before it still come from the engine's cache, as they would for `docker build`).
 * Warm is measured on an agent whose hot pool is off (`--hot-pool 0`), so that every run creates its
 * container; hot on an agent with its default pool, each run taking a container started ahead of time
 * (the benchmark waits, uncounted, until the pool has refilled, and checks afterwards that every counted
 * run was reported hot).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  BENCH_ID, BENCH_LABEL, CLI, DOCKER, DOCKER_ENV, PAIRS, Result, dockerBuild, makeContext, pairs, removeImage,
  startAgentProcess, tempDir,
} from './lib';

/** Spawns a command and resolves with the ms until its first stdout byte (and checks the line). */
function timeToFirstLine(cmd: string, args: string[], expect: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let first: number | undefined;
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      first ??= performance.now() - t0;
      out += d;
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      if (code !== 0 || out !== `${expect}\n`) reject(new Error(`${cmd} ${args.join(' ')} → ${code}: ${out.slice(0, 200)} ${err.slice(-500)}`));
      else resolve(first!);
    });
  });
}

export async function benchFirstLine(): Promise<Result[]> {
  const work = tempDir();
  const ctx = makeContext(path.join(work, 'ctx'), 'COPY nonce /nonce\nCMD ["echo", "first-line"]\n');
  writeFileSync(path.join(ctx, 'nonce'), 'fixed');
  const agent = await startAgentProcess(path.join(work, 'data'), {}, [], ['--hot-pool', '0']);
  const tag = `bytenite-bench-first:${BENCH_ID}`;
  let hotAgent: Awaited<ReturnType<typeof startAgentProcess>> | undefined;
  try {
    const bytenite = () =>
      timeToFirstLine(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--cpus', '1', '--memory', '256m'], 'first-line');
    // The same image for docker run: build the context once with the docker CLI.
    dockerBuild(ctx, tag);
    const dockerRun = () => timeToFirstLine(DOCKER, ['run', '--rm', '--label', BENCH_LABEL, '--cpus', '1', '--memory', '256m', tag], 'first-line');
    const warm = await pairs('1. warm start: first line', bytenite, dockerRun, { ratio: 0.5 });

    const freshNonce = () => writeFileSync(path.join(ctx, 'nonce'), randomBytes(8).toString('hex'));
    const cold = await pairs('1. cold start (1 layer rebuilt): first line',
      () => { freshNonce(); return bytenite(); },
      async () => {
        freshNonce();
        const t0 = performance.now();
        dockerBuild(ctx, tag);
        return performance.now() - t0 + (await dockerRun());
      });
    cold.note = 'baseline: docker build + docker run --rm';
    warm.note = 'agent with --hot-pool 0: every run creates its container';

    // Hot: the same image, on an agent that keeps containers started ahead of time.
    writeFileSync(path.join(ctx, 'nonce'), 'fixed');
    const hotData = path.join(work, 'data-hot');
    hotAgent = await startAgentProcess(hotData);
    const hotAgentId = readFileSync(path.join(hotData, 'agent-id'), 'utf8').trim();
    const poolReady = async () => {
      for (let i = 0; i < 200; i++) {
        const out = execFileSync(DOCKER, ['ps', '-q', '--filter', `label=io.bytenite.agent=${hotAgentId}`, '--filter', 'label=io.bytenite.hot=1'], { encoding: 'utf8' });
        if (out.trim()) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('the agent made no hot container within 10 s');
    };
    const hotRun = () => timeToFirstLine(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), ...hotAgent!.flags, '--cpus', '1', '--memory', '256m'], 'first-line');
    await hotRun(); // builds the image for this agent's tenant digest and fills the pool
    const hot = await pairs('1. hot start (container started ahead of time): first line',
      async () => { await poolReady(); return hotRun(); }, dockerRun, { ratio: 0.25 });
    const listed = execFileSync(process.execPath, [CLI, 'runs', '--json', ...hotAgent.flags], { encoding: 'utf8' })
      .split('\n').filter(Boolean).map((l) => JSON.parse(l) as { final?: { start?: string } });
    const hotRuns = listed.filter((r) => r.final?.start === 'hot').length;
    // The warm-up and the counted runs, all but the first (cold, which filled the pool).
    if (hotRuns < PAIRS + 1) throw new Error(`only ${hotRuns} of ${PAIRS + 1} runs on the hot agent started hot`);
    hot.note = 'agent with its default pool; the wait for the pool to refill between runs is not counted';
    return [warm, cold, hot];
  } finally {
    await agent.stop();
    await hotAgent?.stop();
    removeImage(tag);
  }
}
