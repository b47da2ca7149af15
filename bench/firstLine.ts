/**
 * Benchmark 1, time from the command to the first line the container prints: `bytenite run` against an
 * agent that is already running vs `docker run --rm` of the same image, alternating run by run.
 * Warm: the image exists for this context. Cold: a fresh file in the context forces upload + build
 * (layers before it still come from the engine's cache, as they would for `docker build`).
 * Hot (containers created ahead of time) is not offered by the agent yet: reported as not measured.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  BENCH_ID, BENCH_LABEL, CLI, DOCKER, DOCKER_ENV, Result, dockerBuild, makeContext, notMeasured, pairs, removeImage,
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
  const agent = await startAgentProcess(path.join(work, 'data'));
  const tag = `bytenite-bench-first:${BENCH_ID}`;
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
    const hot = notMeasured('1. hot start (pre-created container): first line', 'ratio ≤ 0.25',
      'the agent has no pool of containers created ahead of time, so no run starts hot');
    return [warm, cold, hot];
  } finally {
    await agent.stop();
    removeImage(tag);
  }
}
