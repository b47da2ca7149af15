// Not part of `npm run bench`: a diagnostic for the bottleneck analysis (npx tsx bench/trace/<name>.ts).
// Where the time of a warm start goes. Part 1: `bytenite run --agent` as a child process, its own
// BYTENITE_TRACE marks (ms since the process started: Node's start and the bundle's loading included) and
// the first stdout byte as the parent sees it; with COMPARE_CLI=path/to/other/bytenite.js the two bundles
// alternate run by run. The agent runs with --hot-pool 0 unless TRACE_HOT_POOL=N. Part 2: the same steps in this process (warm JIT): pack, connect + hello, run.create
// to each event.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { AgentClient } from '../../agent/client/agentClient';
import { packContext } from '../../agent/context/packContext';
import { startAgentProcess, makeContext, tempDir, cleanupAll, CLI, ensureBaseImage, median } from '../lib';

const RUNS = Number(process.env.TRACE_RUNS ?? 7);

/** One CLI run: its trace marks (first occurrence of each) and the parent's time to the first stdout byte. */
function tracedRun(cli: string, args: string[]): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, BYTENITE_TRACE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const marks = new Map<string, number>();
    let err = '';
    child.stdout.once('data', () => marks.set('stdout (parent)', performance.now() - t0));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      marks.set('exit (parent)', performance.now() - t0);
      for (const m of err.matchAll(/^\[trace\] (.+) ([\d.]+)$/gm)) if (!marks.has(m[1])) marks.set(m[1], Number(m[2]));
      if (code !== 0) reject(new Error(`${cli} exited ${code}: ${err.slice(-500)}`));
      else resolve(marks);
    });
  });
}

function summary(label: string, runs: Map<string, number>[]): string {
  const steps = [...new Set(runs.flatMap((r) => [...r.keys()]))];
  return `${label}: ${steps.map((s) => `${s} ${median(runs.map((r) => r.get(s) ?? NaN)).toFixed(0)}`).join(' | ')}`;
}

(async () => {
  try {
    ensureBaseImage(tempDir());
    const work = tempDir();
    const ctx = makeContext(path.join(work, 'ctx'), 'CMD ["echo", "first-line"]\n');
    // As the warm benchmark runs it: no hot pool, so every run creates its container and the agent's share is steady.
    const agent = await startAgentProcess(path.join(work, 'data'), {}, [], ['--hot-pool', process.env.TRACE_HOT_POOL ?? '0']);
    const args = ['run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--memory', '256m'];
    spawnSync(process.execPath, [CLI, ...args]);

    const clis = [CLI, ...(process.env.COMPARE_CLI ? [path.resolve(process.env.COMPARE_CLI)] : [])];
    const byCli = new Map<string, Map<string, number>[]>(clis.map((c) => [c, []]));
    for (let i = 0; i < RUNS; i++) for (const cli of clis) byCli.get(cli)!.push(await tracedRun(cli, args));
    console.log(`medians of ${RUNS} runs, ms since spawn (marks: since the child's own start)`);
    for (const [cli, runs] of byCli) console.log(summary(path.relative(process.cwd(), cli), runs));

    const token = readFileSync(agent.tokenFile, 'utf8').trim();
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const marks: string[] = [];
      const mark = (s: string) => marks.push(`${s} ${(performance.now() - t0).toFixed(0)}`);
      const pack = await packContext(ctx, 'Dockerfile', {}); mark('packed');
      const c = await AgentClient.connect(agent.url, { token }); mark('connected+hello');
      await new Promise<void>((resolve) => {
        c.createRun({ dockerfile: 'Dockerfile', contextDigest: pack.digest, contextBytes: pack.bytes, env: {}, buildArgs: {}, hardware: { cpus: 1, memoryMiB: 256 } }, pack.tarPath, (_s, e) => {
          if (e.kind === 'log' && !marks.some((m) => m.startsWith('first log'))) mark('first log');
          else if (e.kind !== 'log' && e.kind !== 'stats' && e.kind !== 'cost') mark(e.kind);
          if (e.kind === 'exited') resolve();
        }).then(() => mark('run.accepted'));
      });
      await pack.cleanup(); c.close();
      console.log(`in-process: ${marks.join(' | ')}`);
    }
    await agent.stop();
  } finally { cleanupAll(); }
})();
