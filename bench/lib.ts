/**
 * What every benchmark shares: pair-by-pair alternation with medians, the result row written to the table,
 * the agent as a separate process (with its peak memory), the docker CLI baseline, and one cleanup list
 * that removes every image, container and temporary folder the suite made, on failure too.
 */
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export const ROOT = path.resolve(__dirname, '..');
export const CLI = path.join(ROOT, 'dist', 'bytenite.js');
/** Counted pairs per benchmark (after one warm-up pair). BENCH_PAIRS=2 gives a quick run. */
export const PAIRS = Number(process.env.BENCH_PAIRS ?? 7);
/** Debian's 20.10 client with the legacy builder: the same builder the agent drives through the API. */
export const DOCKER = '/usr/bin/docker';
export const DOCKER_ENV = { ...process.env, DOCKER_BUILDKIT: '0' };
/** Every image and container the suite makes carries this label, so cleanup finds exactly them. */
export const BENCH_ID = randomBytes(4).toString('hex');
export const BENCH_LABEL = `bytenite.bench=${BENCH_ID}`;

export const log = (s: string) => console.error(`[bench] ${s}`);

export const median = (xs: number[]) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export type Unit = 'ms' | 'bytes' | 'MiB' | 'req/s' | 'MB/s';

/** One row of the table. A measured comparison has samples on both sides; a single figure has `value`. */
export interface Result {
  name: string;
  unit: Unit;
  bytenite: number[];
  baseline: number[];
  medianBytenite: number;
  medianBaseline: number;
  /** Median of the pair-by-pair ratios ByteNite / baseline. */
  medianRatio: number;
  /** e.g. `ratio ≤ 0.5`, `≤ 2 MB`; empty when the issue sets none. */
  target: string;
  /** null: not measured, or no target. */
  met: boolean | null;
  note?: string;
}

/** Runs a, then b, once as a warm-up and PAIRS times counted; ratios are taken pair by pair. */
export async function pairs(
  name: string, a: () => Promise<number>, b: () => Promise<number>, target: { ratio?: number; text?: string } = {},
): Promise<Result> {
  return (await pairsWithFloors(name, a, b, target, []))[0];
}

/**
 * A floor: what the least possible client or engine work takes, measured in the same rotation as the row it
 * judges, so that its ratio is to the same baseline samples (a floor row has no target of its own).
 */
export interface Floor {
  name: string;
  /** What it measures and what it leaves out. */
  note: string;
  run: () => Promise<number>;
}

/**
 * `pairs`, with each floor run after a and b in every round (the warm-up too): the first row is a against b,
 * then one row per floor against the same b samples.
 */
export async function pairsWithFloors(
  name: string, a: () => Promise<number>, b: () => Promise<number>, target: { ratio?: number; text?: string }, floors: Floor[],
): Promise<Result[]> {
  log(`${name}: warm-up`);
  await a();
  await b();
  for (const f of floors) await f.run();
  const xs: number[] = [];
  const ys: number[] = [];
  const fs: number[][] = floors.map(() => []);
  for (let i = 0; i < PAIRS; i++) {
    xs.push(await a());
    ys.push(await b());
    for (const [k, f] of floors.entries()) fs[k].push(await f.run());
    const extra = fs.map((s, k) => `, floor ${k + 1}: ${s[i].toFixed(0)}`).join('');
    log(`${name}: pair ${i + 1}/${PAIRS}: ${xs[i].toFixed(0)} vs ${ys[i].toFixed(0)} ms${extra}`);
  }
  return [
    comparison(name, xs, ys, target),
    ...floors.map((f, k) => ({ ...comparison(f.name, fs[k], ys), note: f.note })),
  ];
}

export function comparison(name: string, xs: number[], ys: number[], target: { ratio?: number; text?: string } = {}, unit: Unit = 'ms'): Result {
  const medianRatio = median(xs.map((x, i) => x / ys[i]));
  return {
    name, unit, bytenite: xs, baseline: ys, medianBytenite: median(xs), medianBaseline: median(ys), medianRatio,
    target: target.text ?? (target.ratio !== undefined ? `ratio ≤ ${target.ratio}` : ''),
    met: target.ratio !== undefined ? medianRatio <= target.ratio : null,
  };
}

/** A single figure (bytes sent, peak memory) against an upper bound, no baseline. */
export function figure(name: string, unit: Unit, values: number[], max?: number, note?: string): Result {
  const m = median(values);
  return {
    name, unit, bytenite: values, baseline: [], medianBytenite: m, medianBaseline: NaN, medianRatio: NaN,
    target: max === undefined ? '' : `≤ ${formatValue(max, unit)}`, met: max === undefined ? null : m <= max, note,
  };
}

/** A row for something the suite cannot measure yet, said plainly instead of failing. */
export function notMeasured(name: string, target: string, why: string): Result {
  return { name, unit: 'ms', bytenite: [], baseline: [], medianBytenite: NaN, medianBaseline: NaN, medianRatio: NaN, target, met: null, note: `not measured yet: ${why}` };
}

export function formatValue(v: number, unit: Unit): string {
  if (Number.isNaN(v)) return '—';
  if (unit === 'ms') return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(0)} ms`;
  if (unit === 'MiB') return `${v.toFixed(0)} MiB`;
  if (unit === 'req/s' || unit === 'MB/s') return `${v.toFixed(0)} ${unit}`;
  if (v < 1024) return `${v} B`;
  if (v < 1024 ** 2) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / 1024 ** 2).toFixed(1)} MiB`;
}

// ---- cleanup ----

const cleanups: (() => void)[] = [];
/** Registers a cleanup; they run last-in, first-out from `cleanupAll`. */
export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}

export function cleanupAll(): void {
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch (err) {
      console.error(`[bench] cleanup: ${(err as Error).message}`);
    }
  }
}

export function tempDir(prefix = 'bytenite-bench-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const docker = (args: string[]) => execFileSync(DOCKER, args, { env: DOCKER_ENV, encoding: 'utf8', maxBuffer: 64 << 20 });

/** Removes the suite's containers, then its images (newest first, so children go before their parents). */
export function removeBenchObjects(): void {
  const containers = docker(['ps', '-aq', '--filter', `label=${BENCH_LABEL}`]).split('\n').filter(Boolean);
  if (containers.length) execFileSync(DOCKER, ['rm', '-f', ...containers], { stdio: 'ignore' });
  for (let round = 0; round < 4; round++) {
    const images = [...new Set(docker(['images', '-aq', '--filter', `label=${BENCH_LABEL}`]).split('\n').filter(Boolean))];
    if (images.length === 0) return;
    for (const id of images) {
      try {
        execFileSync(DOCKER, ['rmi', '-f', id], { stdio: 'ignore' });
      } catch {
        /* a parent still held by a child: the next round gets it */
      }
    }
  }
}
onCleanup(removeBenchObjects);

/** Removes one image (and the untagged parents only it held) by id or tag; quiet when it is gone. */
export function removeImage(ref: string): void {
  try {
    execFileSync(DOCKER, ['rmi', '-f', ref], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
}

// ---- images ----

/** Dockerfile lines every benchmark image starts with: a labelled busybox base, no registry needed. */
export const BASE_DOCKERFILE = `FROM scratch\nLABEL ${BENCH_LABEL}\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\n`;

/** A context folder with busybox and the given Dockerfile (the base lines are prepended). */
export function makeContext(dir: string, dockerfileRest: string): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync('/bin/busybox', path.join(dir, 'busybox'));
  writeFileSync(path.join(dir, 'Dockerfile'), BASE_DOCKERFILE + dockerfileRest);
  return dir;
}

/** Fills a context with `count` random files spread over 20 folders, file i being `sizeOf(i)` bytes (the traces' big contexts). */
export function addRandomFiles(dir: string, count: number, sizeOf: (i: number) => number): void {
  for (let i = 0; i < count; i++) {
    const rel = `d${i % 20}/f${i}.bin`;
    mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), randomBytes(sizeOf(i)));
  }
}

/**
 * Builds the base with the docker CLI and keeps it tagged for the whole suite, so that removing one
 * benchmark image never evicts the cached busybox steps that both sides share.
 */
export function ensureBaseImage(work: string): void {
  const ctx = makeContext(path.join(work, 'base'), '');
  dockerBuild(ctx, `bytenite-bench-base:${BENCH_ID}`);
}

/** `docker build` with the legacy builder (the default here), or BuildKit (Debian's 20.10 client has it built in). */
export function dockerBuild(ctx: string, tag: string, builder: 'legacy' | 'buildkit' = 'legacy'): void {
  const env = builder === 'buildkit' ? { ...DOCKER_ENV, DOCKER_BUILDKIT: '1' } : DOCKER_ENV;
  execFileSync(DOCKER, ['build', '-q', '-t', tag, ctx], { env, stdio: ['ignore', 'ignore', 'pipe'] });
}

// ---- processes ----

export interface Spawned {
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms from spawn to exit */
  ms: number;
}

/** Spawns a command, collects its output, and rejects unless it exits 0. */
export function runProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; onStdout?: (d: Buffer, t: number) => void; keepStdout?: boolean } = {}): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      opts.onStdout?.(d, performance.now() - t0);
      if (opts.keepStdout !== false) stdout += d;
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const r = { code, stdout, stderr, ms: performance.now() - t0 };
      if (code !== 0) reject(new Error(`${path.basename(cmd)} ${args.join(' ').slice(0, 300)} → exit ${code}: ${stdout.slice(0, 300)} ${stderr.slice(-800)}`));
      else resolve(r);
    });
  });
}

export interface AgentProcess {
  url: string;
  tokenFile: string;
  pid: number;
  /** The CLI flags that point `bytenite run` at this agent. */
  flags: string[];
  /** File bytes the agent's BuildKit transfers sent to the engine since the last call (needs BYTENITE_LOG_LEVEL=info). */
  takeEngineBytes(): number;
  /** Runs whose context the agent read from the client's folder (the local path) since the last call. */
  takeLocalContexts(): number;
  /** Resets the kernel's peak-RSS counter (VmHWM), so the next reading covers only what follows. */
  resetPeak(): void;
  /** Peak resident memory since start or the last reset, MiB. */
  peakMiB(): number;
  stop(): Promise<void>;
}

/** `bytenite agent --port 0` as its own process, the way a remote agent runs. */
export async function startAgentProcess(
  dataDir: string, extraEnv: NodeJS.ProcessEnv = {}, nodeArgs: string[] = [], agentArgs: string[] = [], cli = CLI,
): Promise<AgentProcess> {
  const tokenFile = path.join(dataDir, 'token');
  mkdirSync(dataDir, { recursive: true });
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, cli, 'agent', '--port', '0', '--data-dir', dataDir, '--token-file', tokenFile, ...agentArgs], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BYTENITE_LOG_LEVEL: 'warn', ...extraEnv },
  });
  // The agent's log (at info) says what each BuildKit file transfer sent to the engine: counted here.
  let engineBytes = 0;
  let localContexts = 0;
  let errBuf = '';
  child.stderr!.on('data', (d: Buffer) => {
    errBuf += d;
    const lines = errBuf.split('\n');
    errBuf = lines.pop()!;
    for (const l of lines) {
      if (l.includes('build context read from the client\'s folder')) localContexts++;
      if (!l.includes('build context sent to the engine')) continue;
      try {
        engineBytes += Number((JSON.parse(l) as { bytes?: number }).bytes ?? 0);
      } catch { /* not a log line */ }
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  onCleanup(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      const m = /^listening (\S+)/m.exec(buf);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`agent exited ${code} before listening`)));
  });
  const pid = child.pid!;
  const statusKiB = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  };
  return {
    url, tokenFile, pid, flags: ['--agent', url, '--token-file', tokenFile],
    takeEngineBytes: () => {
      const n = engineBytes;
      engineBytes = 0;
      return n;
    },
    takeLocalContexts: () => {
      const n = localContexts;
      localContexts = 0;
      return n;
    },
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, '5'),
    peakMiB: () => statusKiB('VmHWM') / 1024,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
