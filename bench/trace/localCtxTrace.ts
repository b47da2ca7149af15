// Not part of `npm run bench`: where the time of a cold 200 MiB / 2,000-file context goes (npx tsx
// bench/trace/localCtxTrace.ts after `npm run build`), uploaded (BYTENITE_LOCAL_CONTEXT=0) and read from the
// folder by the agent: the client's listing and hashing, cold and with its stat cache, then one run of each
// path with the CLI's trace marks and the arrival time of each kind of event, and the agent's phases.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { listForBuild } from '../../agent/context/packContext';
import { CLI, addRandomFiles, cleanupAll, ensureBaseImage, makeContext, removeImage, startAgentProcess, tempDir } from '../lib';

function traced(args: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'run', '--json', ...args], { env: { ...process.env, BYTENITE_TRACE: '1', ...env } });
    const marks: string[] = [];
    const seen = new Set<string>();
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const e = (JSON.parse(buf.slice(0, nl)) as { event: Record<string, unknown> }).event;
        buf = buf.slice(nl + 1);
        const kind = `${e.kind}${e.to ? ' to engine' : ''}`;
        const at = (performance.now() - t0).toFixed(0);
        if (!seen.has(kind)) marks.push(`first ${kind} ${at}`);
        seen.add(kind);
        if (e.kind === 'uploading') marks.push(`  ${kind} ${e.bytesDone}/${e.bytesTotal} B at ${at}`);
        if (e.kind === 'building' && e.state === 'done') marks.push(`  step ${e.step} ${String(e.instruction).slice(0, 30)} ${e.ms} ms (cached ${e.cached}) at ${at}`);
        if (e.kind === 'starting') { marks.push(`starting ${at}`); removeAfter.push(String(e.image)); }
        if (e.kind === 'exited') marks.push(`phases ${JSON.stringify(e.phases)}`);
      }
    });
    child.stderr.on('data', (d: Buffer) => { for (const l of d.toString().split('\n')) if (l.startsWith('[trace]')) marks.push(l); });
    child.on('error', reject);
    child.on('close', () => resolve(marks));
  });
}
const removeAfter: string[] = [];
const agents: Awaited<ReturnType<typeof startAgentProcess>>[] = [];

(async () => {
  try {
    ensureBaseImage(tempDir());
    const work = tempDir();
    const ctx = makeContext(path.join(work, 'ctx'), 'COPY . /ctx\nCMD ["true"]\n');
    addRandomFiles(ctx, 2000, (i) => (i < 1600 ? 8_000 : i < 1990 ? 150_000 : 12_000_000));
    for (const cache of ['cold', 'warm']) {
      const t = performance.now();
      await listForBuild(ctx, 'Dockerfile', {});
      console.log(`client listing + hashing, ${cache} stat cache: ${(performance.now() - t).toFixed(0)} ms`);
    }
    // TRACE_LOCAL_FIRST=1: the folder path first (what one path's engine copy leaves the other shows in the bytes).
    // TRACE_CPU_PROF=DIR: the agent writes a CPU profile there (--cpu-prof) when it stops.
    const nodeArgs = process.env.TRACE_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.TRACE_CPU_PROF] : [];
    for (const local of process.env.TRACE_LOCAL_FIRST ? ['1', '0'] : ['0', '1']) {
      for (const change of ['first run', 'one file changed']) {
        if (change === 'first run') writeFileSync(path.join(ctx, 'nonce'), randomBytes(8));
        else writeFileSync(path.join(ctx, 'd0/f1990.bin'), randomBytes(1 << 20));
        const agent = change === 'first run' ? await startAgentProcess(path.join(work, `data-${local}`), { BYTENITE_LOG_LEVEL: 'info' }, nodeArgs) : agents.at(-1)!;
        agents.push(agent);
        console.log(`--- ${local === '1' ? 'read from the folder' : 'uploaded'}, ${change}`);
        for (const m of (await traced([path.join(ctx, 'Dockerfile'), ...agent.flags, '--memory', '256m'], { BYTENITE_LOCAL_CONTEXT: local })).filter((l) => !process.env.TRACE_SHORT || !l.startsWith('  uploading to engine') || l.includes(' 0/'))) console.log(m);
      }
      await agents.at(-1)!.stop();
    }
    for (const i of removeAfter) removeImage(i);
  } finally { cleanupAll(); }
})();
