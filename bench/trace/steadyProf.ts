import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { startAgentProcess, tempDir, cleanupAll } from '../lib';
import { SERVICE_PORT, serviceContext } from '../../test/agent/serviceImage';
(async () => {
  const profDir = '/tmp/prof/out';
  const agent = await startAgentProcess(tempDir(), {}, process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
  const token = readFileSync(agent.tokenFile, 'utf8').trim();
  const client = await AgentClient.connect(agent.url, { token });
  const dir = serviceContext();
  const built = await startRun(client, { contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: { cpus: 1, memoryMiB: 256 }, buildOnly: true, onEvent: () => {} });
  await built.done;
  await client.deployEndpoint('steady', built.spec, { port: SERVICE_PORT, idleMs: 600_000, max: 1, concurrency: 1000 });
  const base = agent.url.replace(/^ws/, 'http');
  const headers = { authorization: `Bearer ${token}` };
  const conns = Number(process.env.CONNS ?? 64);
  for (let i = 0; i < 2; i++) {
    const r = await autocannon({ url: `${base}/e/steady/`, headers, connections: conns, duration: 8, pipelining: 1 });
    console.log(`via: ${r.requests.average} req/s p99 ${r.latency.p99} non2xx ${r.non2xx} errors ${r.errors}`);
  }
  const runId = (await client.endpoints())[0].instances[0].runId;
  const { execFileSync, spawn } = await import('node:child_process');
  const cid = (execFileSync('docker', ['ps', '-q', '--filter', `label=io.bytenite.run=${runId}`], { encoding: 'utf8' }).trim()
    || execFileSync('docker', ['ps', '-q', '--filter', `name=bytenite-${runId}`], { encoding: 'utf8' }).trim()).split('\n')[0];
  const ip = execFileSync('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', cid], { encoding: 'utf8' }).trim();
  const bare = spawn(process.execPath, [path.join(__dirname, '..', 'bareHttpProxy.cjs')], { env: { ...process.env, TARGET_HOST: ip, TARGET_PORT: String(SERVICE_PORT) } });
  const bport = await new Promise<number>((r) => bare.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) r(Number(m[1])); }));
  for (let i = 0; i < 2; i++) {
    const r = await autocannon({ url: `http://127.0.0.1:${bport}/`, connections: conns, duration: 8, pipelining: 1 });
    console.log(`bare proxy: ${r.requests.average} req/s p99 ${r.latency.p99}`);
    const d = await autocannon({ url: `http://${ip}:${SERVICE_PORT}/`, connections: conns, duration: 8, pipelining: 1 });
    console.log(`direct: ${d.requests.average} req/s p99 ${d.latency.p99}`);
  }
  bare.kill();
  client.close();
  await agent.stop();
  await cleanupAll?.();
  process.exit(0);
})();
