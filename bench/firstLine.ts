/**
 * Time from the command to the first line the container prints: `bytenite run` against an agent that is
 * already running vs `docker run --rm` of the same image, alternating run by run after a warm-up.
 * Warm: the image exists for this context. Cold: a fresh file in the context forces upload + build
 * (layers before it still come from the engine's cache, as they would for `docker build`).
 */
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'bytenite.js');
const PAIRS = Number(process.env.BENCH_PAIRS ?? 7);

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
      if (code !== 0 || !out.startsWith(expect)) reject(new Error(`${cmd} ${args.join(' ')} → ${code}: ${out.slice(0, 200)} ${err.slice(-500)}`));
      else resolve(first!);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export interface PairResult {
  name: string;
  bytenite: number[];
  baseline: number[];
  medianBytenite: number;
  medianBaseline: number;
  medianRatio: number;
}

async function pairs(name: string, a: () => Promise<number>, b: () => Promise<number>): Promise<PairResult> {
  await a();
  await b(); // warm-up, not counted
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    xs.push(await a());
    ys.push(await b());
  }
  return {
    name, bytenite: xs, baseline: ys, medianBytenite: median(xs), medianBaseline: median(ys),
    medianRatio: median(xs.map((x, i) => x / ys[i])),
  };
}

async function startAgentProcess(dataDir: string): Promise<{ url: string; tokenFile: string; stop(): void }> {
  const tokenFile = path.join(dataDir, 'token');
  const child = spawn(process.execPath, [CLI, 'agent', '--port', '0', '--data-dir', dataDir, '--token-file', tokenFile], {
    stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, BYTENITE_LOG_LEVEL: 'warn' },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /^listening (\S+)/m.exec(buf);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`agent exited ${code}`)));
  });
  return { url, tokenFile, stop: () => child.kill('SIGTERM') };
}

export async function benchFirstLine(): Promise<PairResult[]> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'bytenite-bench-'));
  const ctx = path.join(work, 'ctx');
  execFileSync('mkdir', ['-p', ctx]);
  copyFileSync('/bin/busybox', path.join(ctx, 'busybox'));
  writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\nCOPY nonce /nonce\nCMD ["echo", "first-line"]\n');
  writeFileSync(path.join(ctx, 'nonce'), 'fixed');
  const agent = await startAgentProcess(path.join(work, 'data'));
  const tag = `bytenite-bench:${randomBytes(4).toString('hex')}`;
  try {
    const bytenite = (extra: string[] = []) =>
      timeToFirstLine(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), '--agent', agent.url, '--token-file', agent.tokenFile, '--memory', '256m', ...extra], 'first-line');
    // The same image for docker run: build the context once with the docker CLI.
    execFileSync('docker', ['build', '-q', '-t', tag, ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    const dockerRun = () => timeToFirstLine('docker', ['run', '--rm', '--memory', '256m', tag], 'first-line');
    const warm = await pairs('warm start: first line', () => bytenite(), dockerRun);

    const freshNonce = () => writeFileSync(path.join(ctx, 'nonce'), randomBytes(8).toString('hex'));
    const cold = await pairs('cold start (1 layer rebuilt): first line',
      () => { freshNonce(); return bytenite(); },
      async () => {
        freshNonce();
        const t0 = performance.now();
        execFileSync('docker', ['build', '-q', '-t', tag, ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
        return performance.now() - t0 + (await dockerRun());
      });
    return [warm, cold];
  } finally {
    agent.stop();
    execFileSync('docker', ['rmi', '-f', tag], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
}
