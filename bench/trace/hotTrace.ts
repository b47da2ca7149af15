// Not part of `npm run bench`: a diagnostic for the bottleneck analysis (npx tsx bench/trace/<name>.ts).
// Where a hot start's time goes after the client's request, as the editor's Run Again has it: one connection
// kept open, the context listed (the agent has a content store), `run.create` to each event of the run, with
// the agent's hot pool on and a pause between runs so that it has made the next container. With
// COMPARE_CLI=path/to/other/bytenite.js a second agent from that bundle takes every other run.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { AgentClient } from '../../agent/client/agentClient';
import { listForBuild } from '../../agent/context/packContext';
import { CLI, startAgentProcess, makeContext, tempDir, cleanupAll, ensureBaseImage, median } from '../lib';

const RUNS = Number(process.env.TRACE_RUNS ?? 9);

(async () => {
  try {
    ensureBaseImage(tempDir());
    const work = tempDir();
    const ctx = makeContext(path.join(work, 'ctx'), 'LABEL bytenite.cpus=0.5 bytenite.memory=128m\nCMD ["sh", "-c", "echo run $BYTENITE_RUN_ID"]\n');
    const clis = [CLI, ...(process.env.COMPARE_CLI ? [path.resolve(process.env.COMPARE_CLI)] : [])];
    const agents = await Promise.all(clis.map(async (cli, k) => {
      const agent = await startAgentProcess(path.join(work, `data${k}`), {}, [], [], cli);
      const client = await AgentClient.connect(agent.url, { token: readFileSync(agent.tokenFile, 'utf8').trim() });
      return { cli, agent, client, rows: [] as Map<string, number>[] };
    }));
    for (let i = 0; i <= RUNS; i++) {
      for (const a of agents) {
        await new Promise((r) => setTimeout(r, 2500));
        const t0 = performance.now();
        const marks = new Map<string, number>();
        const mark = (s: string) => { if (!marks.has(s)) marks.set(s, performance.now() - t0); };
        const pack = await listForBuild(ctx, 'Dockerfile', {}); mark('listed');
        let start = '';
        await new Promise<void>((resolve, reject) => {
          a.client.createRun({ dockerfile: 'Dockerfile', contextDigest: pack.digest, contextBytes: pack.bytes, env: {}, buildArgs: {}, hardware: { cpus: 0.5, memoryMiB: 128 } }, pack, (_s, e) => {
            if (e.kind === 'log') mark('first log');
            else if (e.kind !== 'stats' && e.kind !== 'cost') mark(e.kind);
            if (e.kind === 'starting') start = e.start;
            if (e.kind === 'exited' || e.kind === 'failed') resolve();
          }, undefined, () => mark('accepted')).catch(reject);
        });
        console.log(`${path.relative(process.cwd(), a.cli)} ${i ? `run ${i}` : 'warm-up'} (${start}): ${[...marks].map(([k, v]) => `${k} ${v.toFixed(1)}`).join(' | ')}`);
        if (i && start === 'hot') a.rows.push(marks);
      }
    }
    for (const a of agents) {
      const steps = [...new Set(a.rows.flatMap((r) => [...r.keys()]))];
      console.log(`${path.relative(process.cwd(), a.cli)}: medians of ${a.rows.length} hot runs, ms after the listing began: ${steps.map((s) => `${s} ${median(a.rows.map((r) => r.get(s) ?? NaN)).toFixed(1)}`).join(' | ')}`);
      a.client.close();
      await a.agent.stop();
    }
  } finally { cleanupAll(); }
})();
