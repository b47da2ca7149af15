// Not part of `npm run bench`: a diagnostic for the bottleneck analysis (npx tsx bench/trace/<name>.ts).
// CPU profiles of the agent and of the CLI during one 1M-line run (plain, or --json with TRACE_JSON=1); prints
// the top self-time functions.
import path from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { startAgentProcess, makeContext, tempDir, cleanupAll, CLI, ensureBaseImage } from '../lib';
function top(file: string, n = 12): string {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const self = new Map<string, number>();
  const dt = p.timeDeltas as number[]; const byId = new Map<number, any>(p.nodes.map((x: any) => [x.id, x]));
  p.samples.forEach((id: number, i: number) => {
    const node = byId.get(id); const cf = node.callFrame;
    const k = `${cf.functionName || '(anon)'} ${path.basename(cf.url)}:${cf.lineNumber}`;
    self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `  ${(v / 1000).toFixed(0).padStart(6)} ms ${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`).join('\n') + `\n  total ${(total / 1000).toFixed(0)} ms`;
}
(async () => {
  try {
    ensureBaseImage(tempDir());
    const work = tempDir();
    const ctx = makeContext(path.join(work, 'ctx'), 'CMD ["true"]\n');
    const profA = path.join(work, 'profA'); const profC = path.join(work, 'profC');
    const agent = await startAgentProcess(path.join(work, 'data'), {}, ['--cpu-prof', `--cpu-prof-dir=${profA}`]);
    const cmd = ['sh', '-c', "seq 1 1000000 | sed 's/.*/line & abcdefghijklmnopqrstuvwxyz0123456789=/'"];
    spawnSync(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--memory', '256m', '--', 'true']);
    const t = performance.now();
    const json = process.env.TRACE_JSON === '1' ? ['--json'] : [];
    const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profC}`, CLI, 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--memory', '256m', ...json, '--', ...cmd], { maxBuffer: 1 << 30 });
    console.log(`${json.length ? '--json' : 'plain'} run: ${(performance.now() - t).toFixed(0)} ms, ${r.stdout.length} bytes; agent peak ${agent.peakMiB().toFixed(0)} MiB; ${r.stderr.toString().trim().split('\n').pop()}`);
    await agent.stop();
    console.log('agent (whole life, incl. one tiny run):\n' + top(path.join(profA, readdirSync(profA)[0])));
    console.log('CLI:\n' + top(path.join(profC, readdirSync(profC)[0])));
  } finally { cleanupAll(); }
})();
