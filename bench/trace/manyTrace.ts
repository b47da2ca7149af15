// Not part of `npm run bench`: a diagnostic for the bottleneck analysis (npx tsx bench/trace/<name>.ts).
// Where a many-runs batch spends its time: per run, how long it holds a slot beyond its own runMs.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { startAgentProcess, makeContext, tempDir, cleanupAll, CLI, ensureBaseImage, median } from '../lib';
(async () => {
  try {
    ensureBaseImage(tempDir());
    const work = tempDir();
    const ctx = makeContext(path.join(work, 'ctx'), 'CMD ["true"]\n');
    const agent = await startAgentProcess(path.join(work, 'data'));
    spawnSync(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--cpus', '0.5', '--memory', '64m']);
    const token = readFileSync(agent.tokenFile, 'utf8').trim();
    const clients = await Promise.all(Array.from({ length: 5 }, () => AgentClient.connect(agent.url, { token })));
    const t0 = performance.now();
    const rows = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const ts: Record<string, number> = {};
      const s0 = performance.now();
      const r = await startRun(clients[i % 5], { contextDir: ctx, dockerfile: path.join(ctx, 'Dockerfile'), hardware: { cpus: 0.5, memoryMiB: 64 }, command: ['sh', '-c', 'sleep 0.5'],
        onEvent: (_s, e) => { ts[e.kind] ??= performance.now(); } });
      const accepted = performance.now();
      const f = await r.done;
      const end = performance.now();
      const granted = ts.starting; // capacity granted just before `starting` for a warm run
      return { createMs: accepted - s0, slotHeldMs: end - granted, runMs: f.phases.runMs, startMs: f.phases.startMs, startingToRunning: ts.running - ts.starting, exitToFinal: end - (ts.running + f.phases.runMs) };
    }));
    const total = performance.now() - t0;
    const m = (k: keyof typeof rows[0]) => median(rows.map((r) => r[k])).toFixed(0);
    console.log(`50 runs in ${total.toFixed(0)} ms; medians: submit→accepted ${m('createMs')}, slot held ${m('slotHeldMs')}, runMs ${m('runMs')}, startMs ${m('startMs')}, starting→running ${m('startingToRunning')}, ~exit→final ${m('exitToFinal')} ms`);
    for (const c of clients) c.close();
    await agent.stop();
  } finally { cleanupAll(); }
})();
