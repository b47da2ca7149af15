// Not part of `npm run bench`: a diagnostic for the bottleneck analysis (npx tsx bench/trace/<name>.ts).
// Where the time of a warm start goes: CLI startup, pack, connect, run.create → events, first line.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { AgentClient } from '../../agent/client/agentClient';
import { packContext } from '../../agent/context/packContext';
import { startAgentProcess, makeContext, tempDir, cleanupAll, CLI, ensureBaseImage } from '../lib';
(async () => {
  try {
    ensureBaseImage(tempDir());
    const work = tempDir();
    const ctx = makeContext(path.join(work, 'ctx'), 'CMD ["echo", "first-line"]\n');
    const agent = await startAgentProcess(path.join(work, 'data'));
    spawnSync(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--memory', '256m']);
    const v: number[] = [];
    for (let i = 0; i < 5; i++) { const t = performance.now(); spawnSync(process.execPath, [CLI, '--version']); v.push(performance.now() - t); }
    console.log('node dist/bytenite.js --version ms', v.map((x) => x.toFixed(0)).join(' '));
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
      console.log(marks.join(' | '));
    }
    await agent.stop();
  } finally { cleanupAll(); }
})();
