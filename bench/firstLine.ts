/**
 * Benchmark 1, time from the command to the first line the container prints: `bytenite run` against an
 * agent that is already running vs `docker run --rm` of the same image, alternating run by run.
 * Warm: the image exists for this context. Cold: a fresh file in the context forces upload + build
 * (layers before it still come from the engine's cache, as they would for `docker build`).
 * Warm is measured on an agent whose hot pool is off (`--hot-pool 0`), so that every run creates its
 * container; hot on an agent with its default pool, each run taking a container started ahead of time
 * (the benchmark waits, uncounted, until the pool has refilled, and checks afterwards that every counted
 * run was reported hot).
 *
 * Floors, measured in the same rotation and against the same `docker run --rm` samples: for the warm start,
 * `docker run --rm` on a network like the agent's per-tenant bridge with the agent's limits (what isolation
 * and limits cost in docker's own hands); for the hot start, a bare Node client (`ws` only) that sends the
 * CLI's own `run.create` for the run, and `node -e 0` (Node's start alone).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  BENCH_ID, BENCH_LABEL, CLI, DOCKER, DOCKER_ENV, PAIRS, Result, dockerBuild, makeContext, pairs, pairsWithFloors, removeImage,
  startAgentProcess, tempDir,
} from './lib';
import { PROTOCOL_VERSION } from '../agent/protocol/version';
import { agentLimitFlags, makeTenantLikeNetwork } from './agentLikeDockerRun';
import { captureRunCreate } from './captureRunCreate';

const BARE_CLIENT = path.join(__dirname, 'bareHotClient.cjs');

/** ms from spawn to exit of a command that must exit 0. */
function timeToExit(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args.join(' ')} → ${code}`))));
  });
}

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
    const network = makeTenantLikeNetwork();
    const isolated = agentLimitFlags({ cpus: 1, memoryMiB: 256 }, network);
    const [warm, warmFloor] = await pairsWithFloors('1. warm start: first line', bytenite, dockerRun, { ratio: 1.0 }, [{
      name: '1. warm start FLOOR: docker run --rm on a tenant-like network with the agent\'s limits: first line',
      note: `the engine-side floor of the agent's warm path, ratio to the warm row's docker run --rm; ${isolated.join(' ')}; ` +
        'a user-defined bridge made like agent/network/tenantNetworks.ts; includes the docker CLI\'s own start, as the baseline does; ' +
        'not the agent\'s output folder (putArchive), its stats or its supervision',
      run: () => timeToFirstLine(DOCKER, ['run', '--rm', '--label', BENCH_LABEL, ...isolated, tag], 'first-line'),
    }]);

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
    // One hot CLI run through a relay that keeps what the CLI sends: the bare client sends the same run.create.
    await poolReady();
    const hotArgs = (url: string) => [CLI, 'run', path.join(ctx, 'Dockerfile'), '--agent', url, '--token-file', hotAgent!.tokenFile, '--cpus', '1', '--memory', '256m'];
    const captured = await captureRunCreate(hotAgent.url, (url) => timeToFirstLine(process.execPath, hotArgs(url), 'first-line'));
    const specFile = path.join(work, 'hot-run-spec.json');
    writeFileSync(specFile, captured.spec);
    const bare = () => timeToFirstLine(process.execPath, [BARE_CLIENT, hotAgent!.url, hotAgent!.tokenFile, specFile, String(PROTOCOL_VERSION), 'hot'], 'first-line');
    const [hot, bareFloor, nodeFloor] = await pairsWithFloors('1. hot start (container started ahead of time): first line',
      async () => { await poolReady(); return hotRun(); }, dockerRun, { ratio: 0.35 }, [{
        name: '1. hot start FLOOR: a bare Node client (ws only) sending the CLI\'s run.create: first line',
        note: `the floor of any Node client here, ratio to the hot row's docker run --rm; bench/bareHotClient.cjs: Node's start, ` +
          `ws, the token file, hello, the run.create the CLI sent (captured from the wire; the CLI sent ${captured.types.join(', ')}, ` +
          'what follows run.create coming after the first line), ' +
          'the first log event written to stdout; not the CLI\'s context listing and hashing (its digest is the captured one), ' +
          'no schema checks; the same hot agent and pool wait',
        run: async () => { await poolReady(); return bare(); },
      }, {
        name: '1. hot start FLOOR: node -e 0 (Node\'s own start, spawn to exit)',
        note: 'ratio to the hot row\'s docker run --rm; no module, no connection',
        run: () => timeToExit(process.execPath, ['-e', '0']),
      }]);
    const listed = execFileSync(process.execPath, [CLI, 'runs', '--json', ...hotAgent.flags], { encoding: 'utf8' })
      .split('\n').filter(Boolean).map((l) => JSON.parse(l) as { final?: { start?: string } });
    const hotRuns = listed.filter((r) => r.final?.start === 'hot').length;
    // All but the first (cold, which filled the pool): the captured run, then the warm-up and the counted
    // rounds' CLI and bare runs (each bare run also checks its own start).
    const wantHot = 1 + 2 * (PAIRS + 1);
    if (hotRuns < wantHot) throw new Error(`only ${hotRuns} of ${wantHot} runs on the hot agent started hot`);
    hot.note = 'agent with its default pool; the wait for the pool to refill between runs is not counted';
    return [warm, warmFloor, cold, hot, bareFloor, nodeFloor];
  } finally {
    await agent.stop();
    await hotAgent?.stop();
    removeImage(tag);
  }
}
