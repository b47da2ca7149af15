// Not part of `npm run bench`: a diagnostic for the agent's memory during 1M-line runs (npx tsx bench/trace/logsMemory.ts).
// Samples the agent's RSS every 20 ms through a plain run, a --json run, and prints peak RSS (VmHWM) and
// the RSS at each tenth of the run. BENCH_AGENT_NODE_ARGS adds node flags to the agent (e.g. --heap-prof).
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { startAgentProcess, makeContext, tempDir, cleanupAll, CLI, ensureBaseImage } from '../lib';

const cmd = ['sh', '-c', "seq 1 1000000 | sed 's/.*/line & abcdefghijklmnopqrstuvwxyz0123456789=/'"];

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

(async () => {
  try {
    ensureBaseImage(tempDir());
    const work = tempDir();
    const ctx = makeContext(path.join(work, 'ctx'), 'CMD ["true"]\n');
    const nodeArgs = (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const agent = await startAgentProcess(path.join(work, 'data'), {}, nodeArgs);
    const runs = (process.env.TRACE_MODES ?? 'plain,json').split(',');
    for (const mode of runs) {
      agent.resetPeak();
      const samples: number[] = [];
      const timer = setInterval(() => samples.push(rssMiB(agent.pid)), 20);
      const t = performance.now();
      const child = spawn(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--memory', '256m', ...(mode === 'json' ? ['--json'] : []), '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
      let bytes = 0;
      let err = '';
      child.stdout.on('data', (d: Buffer) => (bytes += d.length));
      child.stderr.on('data', (d) => (err += d));
      await new Promise((r) => child.on('close', r));
      clearInterval(timer);
      const tenths = Array.from({ length: 10 }, (_, i) => samples[Math.floor((i * samples.length) / 10)]?.toFixed(0)).join(' ');
      console.log(`${mode}: ${(performance.now() - t).toFixed(0)} ms, ${bytes} bytes out; agent VmHWM ${agent.peakMiB().toFixed(0)} MiB; RSS by tenths: ${tenths}; ${err.trim().split('\n').pop()}`);
    }
    await agent.stop();
  } finally { cleanupAll(); }
})();
