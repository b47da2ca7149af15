/**
 * Benchmark 2, the build context: 200 MiB in 2,000 files of mixed sizes, `COPY . /ctx`.
 * ByteNite: `bytenite run --json` against a running agent, timed from the command to the `starting` event
 * (image ready); the bytes sent are the agent's own `uploading` count, and the file bytes the agent sent the
 * engine the DiffCopy DATA bytes its log reports. Baseline: `DOCKER_BUILDKIT=1 docker build` of the same
 * context and Dockerfile, to its exit (what a current Docker user runs); the legacy `docker build` is kept as
 * a row of its own. Three cases, each alternating run by run:
 *   - first run: a fresh agent (nothing stored) and a context the engine has never built;
 *   - one 1 MiB file changed (a different one each time; both sides build each state);
 *   - nothing changed: ByteNite must start warm and send no context bytes.
 * Every ByteNite run then runs the image, which prints an md5 over every file in /ctx: it must match
 * the files on disk, so an image with missing or stale files fails the benchmark.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  AgentProcess, BENCH_ID, DOCKER, DOCKER_ENV, Result, comparison, dockerBuild, figure, log, makeContext, removeImage,
  runProcess, startAgentProcess, tempDir, PAIRS,
} from './lib';
import { runJson, JsonRun } from './cliRun';

const MiB = 1024 * 1024;
/** The issue's 200 MiB by default (BENCH_CONTEXT_MIB=N for a quicker look). */
const TOTAL = Number(process.env.BENCH_CONTEXT_MIB ?? 200) * MiB;
const SHRUNK = TOTAL < 200 * MiB ? `; context shrunk from the issue's 200 MiB by BENCH_CONTEXT_MIB` : '';
const FILES = 2000;

/** A deterministic spread of sizes: many small files, some medium, 40 of exactly 1 MiB, a few large. */
function fileSizes(total: number): number[] {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const f = Math.min(1, total / (200 * MiB)); // a smaller context (quick runs) shrinks the files, not their number
  const ones = Math.max(8, Math.round(40 * f));
  const sizes: number[] = [];
  for (let i = 0; i < 1600; i++) sizes.push(Math.floor((1024 + rand() * 15 * 1024) * f)); // 1–16 KiB
  for (let i = 0; i < FILES - 10 - ones - 1600; i++) sizes.push(Math.floor((64 * 1024 + rand() * 320 * 1024) * f)); // 64–384 KiB
  for (let i = 0; i < ones; i++) sizes.push(MiB); // the files the "one changed" case rewrites
  const rest = total - sizes.reduce((a, b) => a + b, 0) - 2 * MiB; // busybox and the Dockerfile take ~2 MiB
  if (rest < 10 * 1024) throw new Error(`BENCH_CONTEXT_MIB too small for ${FILES} files`);
  for (let i = 0; i < 10; i++) sizes.push(Math.floor(rest / 10)); // the large ones
  return sizes; // 2000 files
}

class Context {
  dir: string;
  private moves = 0;
  private readonly md5 = new Map<string, string>();
  readonly oneMiB: string[] = [];
  private changes = 0;

  constructor(work: string) {
    this.dir = makeContext(path.join(work, 'ctx'),
      'COPY . /ctx\nCMD ["sh", "-c", "cd /ctx && find . -type f | sort | xargs md5sum | md5sum"]\n');
    fileSizes(TOTAL).forEach((size, i) => {
      const rel = `d${String(i % 20).padStart(2, '0')}/f${String(i).padStart(4, '0')}.bin`;
      mkdirSync(path.join(this.dir, path.dirname(rel)), { recursive: true });
      this.write(rel, randomBytes(size));
      if (size === MiB) this.oneMiB.push(rel);
    });
    this.write('nonce', Buffer.from('0'));
    for (const f of ['Dockerfile', 'busybox']) this.md5.set(f, md5(readFileSync(path.join(this.dir, f))));
  }

  private write(rel: string, data: Buffer): void {
    writeFileSync(path.join(this.dir, rel), data);
    this.md5.set(rel, md5(data));
  }

  /**
   * The same files under a new path: the docker CLI keys the engine's kept copy of a context by its path, so
   * only a context at a path it never built from is a first run for `docker build` too.
   */
  moveToFreshPath(): void {
    const to = `${this.dir.replace(/-moved-\d+$/, '')}-moved-${++this.moves}`;
    renameSync(this.dir, to);
    this.dir = to;
  }

  /** A state no build has seen: a new nonce (a small file). */
  freshNonce(): void {
    this.write('nonce', randomBytes(16));
  }

  /** Rewrites one 1 MiB file (a different one each call) with new bytes of the same size. */
  changeOneFile(): string {
    const rel = this.oneMiB[this.changes++ % this.oneMiB.length];
    this.write(rel, randomBytes(MiB));
    return rel;
  }

  /** What the image's CMD prints when /ctx holds exactly these files: md5sum's listing, hashed. */
  expected(): string {
    const lines = [...this.md5.keys()].map((p) => `./${p}`).sort().map((p) => `${this.md5.get(p.slice(2))}  ${p}\n`);
    return `${md5(Buffer.from(lines.join('')))}  -\n`;
  }
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

export async function benchBuildContext(): Promise<Result[]> {
  const work = tempDir();
  log(`build context: writing ${FILES} files, ${TOTAL / MiB} MiB`);
  const ctx = new Context(work);
  const tag = `bytenite-bench-ctx:${BENCH_ID}`;
  const hw = ['--cpus', '1', '--memory', '256m'];
  let agent: AgentProcess | undefined;
  let agents = 0;
  const freshAgent = async () => {
    await agent?.stop();
    agent = await startAgentProcess(path.join(work, `data-${agents++}`), { BYTENITE_LOG_LEVEL: 'info' });
  };

  /** Cold ByteNite runs since the last `pathNote()`, and how many of them the agent read from the folder itself. */
  let coldRuns = 0;
  let localRuns = 0;
  const pathNote = (): string => {
    const note = `; context path: read from the client's folder by the agent in ${localRuns} of ${coldRuns} cold runs, uploaded in the rest`;
    coldRuns = localRuns = 0;
    return note;
  };
  const bytenite = async (expectStart: 'warm' | 'cold', keepImage = false): Promise<JsonRun> => {
    const r = await runJson([path.join(ctx.dir, 'Dockerfile'), ...agent!.flags, ...hw]);
    if (r.start === 'cold') coldRuns++;
    localRuns += agent!.takeLocalContexts();
    // A hot start is a warm one whose container was also made ahead: no upload and no build either way.
    if ((r.start === 'cold') !== (expectStart === 'cold')) throw new Error(`expected a ${expectStart} start, got ${r.start}`);
    if (r.stdout !== ctx.expected()) throw new Error(`the image's /ctx does not match the context: got ${JSON.stringify(r.stdout)}, want ${JSON.stringify(ctx.expected())}`);
    if (!keepImage) removeImage(r.image); // 200 MiB per build: do not let them pile up
    return r;
  };
  let dockerChecked = false;
  // BuildKit keys COPY by content, not by who sent it: a docker build of the very state ByteNite just built
  // would take ByteNite's layer from the shared build cache. In the "one file changed" case docker builds a
  // twin of the context whose changed file gets bytes of its own, so each side does its own work.
  let twin: string | undefined;
  const docker = async (keepImage = false, builder: 'buildkit' | 'legacy' = 'buildkit'): Promise<number> => {
    const t0 = performance.now();
    dockerBuild(twin ?? ctx.dir, tag, builder);
    const ms = performance.now() - t0;
    if (!dockerChecked) {
      // Once: the baseline builds the same image (same files in /ctx), so the two sides do the same work.
      const out = (await runProcess(DOCKER, ['run', '--rm', ...hw, tag], { env: DOCKER_ENV })).stdout;
      if (out !== ctx.expected()) throw new Error(`docker build's image does not match the context: ${out}`);
      dockerChecked = true;
    }
    if (!keepImage) removeImage(tag);
    return ms;
  };

  try {
    const results: Result[] = [];
    // First run: the agent has never seen this context (a fresh agent), the engine has never built it.
    {
      const xs: number[] = [];
      const ys: number[] = [];
      const zs: number[] = [];
      for (let i = 0; i <= PAIRS; i++) {
        await freshAgent();
        ctx.freshNonce();
        const a = (await bytenite('cold')).startingMs;
        ctx.freshNonce();
        ctx.moveToFreshPath();
        const b = await docker();
        ctx.freshNonce();
        const c = await docker(false, 'legacy');
        log(`build context, first run: ${i ? `pair ${i}/${PAIRS}` : 'warm-up'}: ${a.toFixed(0)} vs ${b.toFixed(0)} ms (legacy ${c.toFixed(0)} ms)`);
        if (i) { xs.push(a); ys.push(b); zs.push(c); }
      }
      const r = comparison(`2. build context ${TOTAL / MiB} MiB / ${FILES} files: first run, upload + build`, xs, ys, { ratio: 1.0 });
      r.note = `ByteNite: command → \`starting\`; baseline: \`DOCKER_BUILDKIT=1 docker build\`${SHRUNK}${pathNote()}`;
      results.push(r);
      const l = comparison('2. build context: first run, against the legacy `docker build`', xs, zs);
      l.note = 'baseline: `DOCKER_BUILDKIT=0 docker build` (no target: the legacy figure kept as its own row)';
      results.push(l);
    }
    // One 1 MiB file changed, on one long-lived agent.
    {
      const xs: number[] = [];
      const ys: number[] = [];
      const zs: number[] = [];
      const sent: number[] = [];
      const toEngine: number[] = [];
      await freshAgent();
      ctx.freshNonce();
      await bytenite('cold'); // the agent's first sight of the context
      twin = path.join(work, 'twin');
      execFileSync('cp', ['-a', ctx.dir, twin]);
      await docker();
      await docker(false, 'legacy');
      for (let i = 0; i <= PAIRS; i++) {
        const changed = ctx.changeOneFile();
        writeFileSync(path.join(twin, changed), randomBytes(MiB));
        agent!.takeEngineBytes();
        const a = await bytenite('cold');
        const engineBytes = agent!.takeEngineBytes();
        // Both sides build the same state, one 1 MiB file away from what each built last (a second change here
        // would make ByteNite's next run two files away from its last one). BuildKit keeps its copy of the
        // context and its cache whether or not the image stays.
        const b = await docker();
        const c = await docker(false, 'legacy');
        log(`build context, 1 file changed: ${i ? `pair ${i}/${PAIRS}` : 'warm-up'}: ${a.startingMs.toFixed(0)} vs ${b.toFixed(0)} ms (legacy ${c.toFixed(0)} ms), ${a.uploadedBytes} B sent, ${engineBytes} B to the engine`);
        if (i) { xs.push(a.startingMs); ys.push(b); zs.push(c); sent.push(a.uploadedBytes); toEngine.push(engineBytes); }
      }
      const r = comparison('2. build context: one 1 MiB file changed, run', xs, ys, { ratio: 0.5 });
      r.note = `baseline: \`DOCKER_BUILDKIT=1 docker build\`${pathNote()}`;
      results.push(r);
      const l = comparison('2. build context: one 1 MiB file changed, against the legacy `docker build`', xs, zs);
      l.note = 'baseline: `DOCKER_BUILDKIT=0 docker build` (its own row, no target)';
      results.push(l);
      results.push(figure('2. build context: one 1 MiB file changed, context bytes sent', 'bytes', sent, 2_000_000,
        'the agent\'s `uploading` count: the manifest\'s text and the contents the agent lacked (none when it reads the folder itself)'));
      twin = undefined;
      results.push(figure('2. build context: one 1 MiB file changed, file bytes sent agent → engine', 'bytes', toEngine, 2_000_000,
        'DiffCopy DATA bytes the engine asked for (the agent\'s log)'));
    }
    // Nothing changed: ByteNite warm (no upload, no build) vs a fully cached docker build.
    {
      const xs: number[] = [];
      const ys: number[] = [];
      const sent: number[] = [];
      ctx.changeOneFile();
      const first = await bytenite('cold', true);
      pathNote();
      await docker(true);
      for (let i = 0; i <= PAIRS; i++) {
        const a = await bytenite('warm', true);
        const b = await docker(true);
        log(`build context, nothing changed: ${i ? `pair ${i}/${PAIRS}` : 'warm-up'}: ${a.startingMs.toFixed(0)} vs ${b.toFixed(0)} ms, ${a.uploadedBytes} B sent`);
        if (i) { xs.push(a.startingMs); ys.push(b); sent.push(a.uploadedBytes); }
      }
      removeImage(first.image);
      removeImage(tag);
      const r = comparison('2. build context: nothing changed (warm), run', xs, ys);
      r.note = 'baseline: fully cached `DOCKER_BUILDKIT=1 docker build`';
      results.push(r);
      results.push(figure('2. build context: nothing changed, context bytes sent', 'bytes', sent, 0));
    }
    return results;
  } finally {
    await agent?.stop();
    removeImage(tag);
  }
}
