/**
 * Endpoint benchmarks (BENCH_ONLY=endpoints): the first response of an endpoint at zero with a hot container
 * waiting, against `docker run -d` of the same image, waiting for its port, then the same request; and 200
 * concurrent requests to an endpoint at zero (all 200, p50/p99, instances that served them), with the agent in
 * this process (its hot pool on) and busybox httpd FROM scratch; and the steady state (benchSteady).
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { startAgent } from '../agent/server';
import { createLogger } from '../agent/log';
import { AgentClient } from '../agent/client/agentClient';
import { startRun } from '../agent/client/startRun';
import { Result, comparison, figure, log, median, onCleanup, startAgentProcess, tempDir, PAIRS } from './lib';
import { SERVICE_PORT, serviceContext } from '../test/agent/serviceImage';

function get(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); }).on('error', reject);
  });
}

async function waitPort(host: string, port: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((r) => { const s = net.connect(port, host, () => { s.destroy(); r(true); }); s.on('error', () => r(false)); });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function benchWakeAndBurst(): Promise<Result[]> {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'www'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(dir, 'busybox'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'bench');
  writeFileSync(path.join(dir, 'Dockerfile'), `FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nLABEL bench=${randomBytes(4).toString('hex')}\nCMD ["/bin/busybox","httpd","-f","-p","8000","-h","/www"]\n`);
  const token = randomBytes(16).toString('hex');
  const agent = await startAgent({ host: '127.0.0.1', port: 0, token, dataDir: tempDir(), log: createLogger('silent'), stopGraceSeconds: 1 });
  const client = await AgentClient.connect(agent.url, { token });
  const base = agent.url.replace(/^ws/, 'http');
  const auth = { authorization: `Bearer ${token}` };
  try {
    const built = await startRun(client, { contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: { cpus: 0.5, memoryMiB: 128 }, buildOnly: true, onEvent: () => {} });
    await built.done;
    await client.deployEndpoint('bench', built.spec, { port: 8000, idleMs: 500, max: 4, concurrency: 64 });
    const image = (await client.endpoints())[0].image;
    const atZero = async () => {
      while ((await client.endpoints())[0].instances.length > 0) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 1500)); // the pool's container for the next wake is made meanwhile
    };
    const wake = async () => {
      await atZero();
      const t0 = performance.now();
      if ((await get(`${base}/e/bench/`, auth)) !== 200) throw new Error('wake: not 200');
      return performance.now() - t0;
    };
    const dockerRun = async () => {
      const t0 = performance.now();
      const id = execFileSync('docker', ['run', '-d', image], { encoding: 'utf8' }).trim();
      const ip = execFileSync('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id], { encoding: 'utf8' }).trim();
      await waitPort(ip, 8000);
      if ((await get(`http://${ip}:8000/`, {})) !== 200) throw new Error('docker run: not 200');
      const ms = performance.now() - t0;
      execFileSync('docker', ['rm', '-f', id]);
      return ms;
    };
    log('endpoints: warm-up');
    await wake();
    await dockerRun();
    const xs: number[] = [];
    const ys: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      xs.push(await wake());
      ys.push(await dockerRun());
      log(`endpoints: pair ${i + 1}/${PAIRS}: ${xs[i].toFixed(0)} vs ${ys[i].toFixed(0)} ms`);
    }
    const wakeRow = comparison('endpoint wake from zero, hot container waiting, to first response (`docker run -d` + port + request)', xs, ys, { ratio: 0.25 });
    const wakes = (await client.endpointRequests('bench', { limit: 1000 })).filter((r) => r.wake).slice(-PAIRS);
    wakeRow.note = `wakes: ${wakes.map((r) => `${r.wake!.start} held ${r.heldMs}/admit ${r.wake!.admitMs}/start ${r.wake!.startMs}/ready ${r.wake!.readyMs}/first byte ${r.firstByteMs}`).join('; ')}`;

    await atZero();
    const times: number[] = [];
    const statuses = await Promise.all(Array.from({ length: 200 }, async () => {
      const t0 = performance.now();
      const s = await get(`${base}/e/bench/`, auth);
      times.push(performance.now() - t0);
      return s;
    }));
    const bad = statuses.filter((s) => s !== 200).length;
    const served = new Set((await client.endpointRequests('bench', { limit: 200 })).map((r) => r.instance)).size;
    times.sort((a, b) => a - b);
    const burst = figure('200 concurrent requests at zero, p50', 'ms', [median(times)], undefined,
      `p99 ${times[Math.floor(times.length * 0.99) - 1].toFixed(0)} ms; ${200 - bad}/200 answered 200; ${served} instance(s) served them`);
    burst.met = bad === 0;

    return [wakeRow, burst];
  } finally {
    client.close();
    await agent.close();
  }
}

/**
 * Steady state, as a user's endpoint runs: a standalone agent process (not this one, which runs the load), one
 * instance of a keep-alive HTTP server (test/fixtures/service/server.js) with a whole vCPU, so that neither side
 * is held by the CPU quota; 64 keep-alive connections through /e/NAME/ and straight to the instance's address,
 * alternating over BENCH_ENDPOINTS_ROUNDS rounds (default 3) of BENCH_ENDPOINTS_SECONDS (default 10).
 */
async function benchSteady(): Promise<Result[]> {
  // BENCH_ENDPOINTS_CPU_PROF=DIR: the agent writes a CPU profile there as it stops (where its time per request goes).
  const prof = process.env.BENCH_ENDPOINTS_CPU_PROF;
  const agent = await startAgentProcess(tempDir(), {}, prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []);
  const token = readFileSync(agent.tokenFile, 'utf8').trim();
  const client = await AgentClient.connect(agent.url, { token });
  try {
    const dir = serviceContext();
    const built = await startRun(client, { contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: { cpus: 1, memoryMiB: 256 }, buildOnly: true, onEvent: () => {} });
    await built.done;
    await client.deployEndpoint('steady', built.spec, { port: SERVICE_PORT, idleMs: 600_000, max: 1, concurrency: 1000 });
    const base = agent.url.replace(/^ws/, 'http');
    const auth = { authorization: `Bearer ${token}` };
    if ((await get(`${base}/e/steady/`, auth)) !== 200) throw new Error('steady: not 200');
    const runId = (await client.endpoints()).find((e) => e.name === 'steady')!.instances[0].runId;
    // A hot container was labelled before it had a run: it is found by the name it is given at the go.
    const cid = (execFileSync('docker', ['ps', '-q', '--filter', `label=io.bytenite.run=${runId}`], { encoding: 'utf8' }).trim()
      || execFileSync('docker', ['ps', '-q', '--filter', `name=bytenite-${runId}`], { encoding: 'utf8' }).trim()).split('\n')[0];
    if (!cid) throw new Error(`steady: no container for ${runId}`);
    const ip = execFileSync('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', cid], { encoding: 'utf8' }).trim();
    const seconds = Number(process.env.BENCH_ENDPOINTS_SECONDS ?? 10);
    const rounds = Number(process.env.BENCH_ENDPOINTS_ROUNDS ?? 3);
    const load = async (url: string, headers: Record<string, string>) => {
      const r = await autocannon({ url, headers, connections: 64, duration: seconds, pipelining: 1 });
      if (r.non2xx || r.errors) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      return { rps: r.requests.average, p99: r.latency.p99 };
    };
    // The floor: the least any Node HTTP proxy in its own process costs here (no token, journal or headers).
    const bare = spawn(process.execPath, [path.join(__dirname, 'bareHttpProxy.cjs')], { env: { ...process.env, TARGET_HOST: ip, TARGET_PORT: String(SERVICE_PORT) }, stdio: ['ignore', 'pipe', 'inherit'] });
    onCleanup(() => bare.kill('SIGKILL'));
    const barePort = await new Promise<number>((resolve) => bare.stdout!.on('data', (d: Buffer) => {
      const m = /listening (\d+)/.exec(String(d));
      if (m) resolve(Number(m[1]));
    }));
    await load(`${base}/e/steady/`, auth); // warm-up: keep-alive pools, JIT
    await load(`http://127.0.0.1:${barePort}/`, {});
    const via: Array<{ rps: number; p99: number }> = [];
    const floor: Array<{ rps: number; p99: number }> = [];
    const direct: Array<{ rps: number; p99: number }> = [];
    for (let i = 0; i < rounds; i++) {
      via.push(await load(`${base}/e/steady/`, auth));
      floor.push(await load(`http://127.0.0.1:${barePort}/`, {}));
      direct.push(await load(`http://${ip}:${SERVICE_PORT}/`, {}));
      log(`endpoints: steady round ${i + 1}/${rounds}: ${via[i].rps.toFixed(0)} req/s p99 ${via[i].p99} ms, bare Node proxy ${floor[i].rps.toFixed(0)} req/s p99 ${floor[i].p99} ms, direct ${direct[i].rps.toFixed(0)} req/s p99 ${direct[i].p99} ms`);
    }
    bare.kill();
    const steady = comparison(`steady state through the endpoint, 64 keep-alive connections, standalone agent, instance with 1 vCPU (straight to the instance's address)`,
      via.map((v) => v.rps), direct.map((d) => d.rps), { text: 'ratio ≥ 0.7, p99 +≤ 3 ms' }, 'req/s');
    const addedP99 = median(via.map((v, i) => v.p99 - direct[i].p99));
    steady.met = steady.medianRatio >= 0.7 && addedP99 <= 3;
    steady.note = `p99 ${via.map((v) => v.p99).join('/')} ms vs ${direct.map((d) => d.p99).join('/')} ms (added, median: ${addedP99} ms); ${rounds} rounds of ${seconds} s; agent peak ${agent.peakMiB().toFixed(0)} MiB`;
    const floorRow = comparison('steady state FLOOR: a bare Node HTTP proxy in its own process (bench/bareHttpProxy.cjs: keep-alive upstream, no token check, journal or added headers), same load, same instance (straight to the instance\'s address)',
      floor.map((f) => f.rps), direct.map((d) => d.rps), {}, 'req/s');
    floorRow.note = `p99 ${floor.map((f) => f.p99).join('/')} ms; the endpoint row is ${(steady.medianBytenite / floorRow.medianBytenite).toFixed(2)} of it`;
    return [steady, floorRow];
  } finally {
    client.close();
    await agent.stop();
  }
}

/** The endpoint rows: wake and burst with the agent in this process, steady state against a standalone one. */
export async function benchEndpoints(): Promise<Result[]> {
  const rows = await benchWakeAndBurst();
  return [...rows, ...(await benchSteady())];
}
