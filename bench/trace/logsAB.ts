// Not part of `npm run bench`: before/after timings of benchmark 3 for two builds of the CLI and agent, in one
// sitting (npx tsx bench/trace/logsAB.ts BEFORE_DIST AFTER_DIST [rounds]); each dist is a folder with bytenite.js.
// Every round runs docker, then each build plain and --json, in an order that rotates, each build against
// its own agent process; prints medians, ratios to docker and each agent's peak memory (VmHWM).
import path from 'node:path';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { BENCH_LABEL, DOCKER, cleanupAll, dockerBuild, ensureBaseImage, makeContext, median, tempDir } from '../lib';
import { COMMAND, expectedOutput, timeToLastLine } from '../logThroughput';

interface Agent { flags: string[]; pid: number; stop(): void }

async function startAgent(cli: string, dataDir: string): Promise<Agent> {
  mkdirSync(dataDir, { recursive: true });
  const tokenFile = path.join(dataDir, 'token');
  const child = spawn(process.execPath, [cli, 'agent', '--port', '0', '--data-dir', dataDir, '--token-file', tokenFile], {
    stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, BYTENITE_LOG_LEVEL: 'warn' },
  });
  const url = await new Promise<string>((resolve) => {
    let buf = '';
    child.stdout!.on('data', (d) => { buf += d; const m = /^listening (\S+)/m.exec(buf); if (m) resolve(m[1]); });
  });
  return { flags: ['--agent', url, '--token-file', tokenFile], pid: child.pid!, stop: () => child.kill('SIGKILL') };
}

const hwm = (pid: number) => Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

(async () => {
  const [before, after] = process.argv.slice(2, 4).map((d) => path.resolve(d, 'bytenite.js'));
  const rounds = Number(process.argv[4] ?? 5);
  const work = tempDir();
  try {
    ensureBaseImage(work);
    const ctx = makeContext(path.join(work, 'ctx'), 'CMD ["true"]\n');
    const tag = `bytenite-bench-logs-ab:${Date.now()}`;
    dockerBuild(ctx, tag);
    const want = expectedOutput();
    const hw = ['--cpus', '1', '--memory', '256m'];
    const builds = { before: { cli: before, agent: await startAgent(before, path.join(work, 'a')) }, after: { cli: after, agent: await startAgent(after, path.join(work, 'b')) } };
    const times: Record<string, number[]> = {};
    const peaks: Record<string, number[]> = { before: [], after: [] };
    const add = (k: string, v: number) => (times[k] ??= []).push(v);
    const jobs: Array<[string, () => Promise<number>]> = [['docker', () => timeToLastLine(DOCKER, ['run', '--rm', '--label', BENCH_LABEL, ...hw, tag, ...COMMAND], false, want)]];
    for (const [name, b] of Object.entries(builds)) {
      for (const json of [false, true]) {
        jobs.push([`${name} ${json ? 'json' : 'plain'}`, async () => {
          writeFileSync(`/proc/${b.agent.pid}/clear_refs`, '5');
          const ms = await timeToLastLine(process.execPath, [b.cli, 'run', path.join(ctx, 'Dockerfile'), ...b.agent.flags, ...hw, ...(json ? ['--json'] : []), '--', ...COMMAND], json, want);
          peaks[name].push(hwm(b.agent.pid));
          return ms;
        }]);
      }
    }
    for (let r = 0; r <= rounds; r++) {
      const order = jobs.slice(r % jobs.length).concat(jobs.slice(0, r % jobs.length));
      const line: string[] = [];
      const got: Record<string, number> = {};
      for (const [k, job] of order) { got[k] = await job(); line.push(`${k} ${got[k].toFixed(0)}`); }
      console.log(`${r ? `round ${r}` : 'warm-up'}: ${line.join(', ')}`);
      if (r) for (const [k, v] of Object.entries(got)) add(k, v);
    }
    for (const [k, v] of Object.entries(times)) console.log(`${k.padEnd(14)} median ${median(v).toFixed(0)} ms, median ratio to docker ${median(v.map((x, i) => x / times.docker[i])).toFixed(2)}`);
    for (const [k, v] of Object.entries(peaks)) console.log(`${k} agent VmHWM per run: max ${Math.max(...v).toFixed(0)} MiB`);
    Object.values(builds).forEach((b) => b.agent.stop());
    execDockerRmi(tag);
  } finally { cleanupAll(); }
})();

function execDockerRmi(tag: string): void {
  spawn(DOCKER, ['rmi', '-f', tag], { stdio: 'ignore' });
}
