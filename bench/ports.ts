/**
 * Port-forward benchmark: the same container (a node HTTP server, test/fixtures/service/server.js), the same
 * client (autocannon in this process), alternating: through `bytenite run -p` vs straight to the container's
 * address on its bridge, as a user on the engine's host could `curl` it. Rows for the embedded agent (the CLI
 * process is the agent) and for a standalone agent process: requests/s and added p99 latency under a
 * keep-alive load (BENCH_PORTS_CONNECTIONS, default 64, for BENCH_PORTS_SECONDS, default 20), the throughput
 * of a 100 MB download, the peak memory of the CLI and of the agent, and the time from the container's start
 * to its port's first accepted connection ("ready").
 */
import { spawn, ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import autocannon from 'autocannon';
import Docker from 'dockerode';
import { CLI, PAIRS, Result, figure, log, median, onCleanup, startAgentProcess, tempDir } from './lib';
import { SERVICE_PORT, serviceContext } from '../test/agent/serviceImage';

const SECONDS = Number(process.env.BENCH_PORTS_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.BENCH_PORTS_CONNECTIONS ?? 64);
const DOWNLOAD = 100_000_000;
const ROUNDS = Math.min(PAIRS, Number(process.env.BENCH_PORTS_PAIRS ?? 3));

function vmHwm(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

interface Load {
  rps: number;
  p99: number;
}

async function load(url: string): Promise<Load> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, pipelining: 1 });
  if (r.non2xx || r.errors) throw new Error(`${url}: ${r.non2xx} non-2xx answers and ${r.errors} errors under load`);
  return { rps: r.requests.average, p99: r.latency.p99 };
}

/** MB/s of one download of DOWNLOAD bytes. */
function download(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get(`${url}/bytes?n=${DOWNLOAD}`, { agent: false }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => (n === DOWNLOAD ? resolve(DOWNLOAD / 1e6 / ((performance.now() - t0) / 1000)) : reject(new Error(`got ${n} of ${DOWNLOAD} bytes`))));
      res.on('error', reject);
    }).on('error', reject);
  });
}

interface Served {
  child: ChildProcess;
  forwardUrl: string;
  directUrl: string;
  readyMs: number;
}

/** `bytenite run -p` of the service; resolves once the CLI says the port is ready. */
async function serve(ctx: string, agentFlags: string[], dataDir: string): Promise<Served> {
  const local = await freePort();
  const child = spawn(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), ...agentFlags, '--data-dir', dataDir, '--cpus', '1', '--memory', '512m',
    '-p', `${local}:${SERVICE_PORT}`, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BYTENITE_LOG_LEVEL: 'warn' } });
  onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const forward = await new Promise<{ runId: string; ms: number }>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) if (line.startsWith('{"type":"forward"')) resolve(JSON.parse(line));
    });
    child.once('exit', (code) => reject(new Error(`bytenite run exited ${code}: ${err.slice(-800)}`)));
  });
  child.stdout!.removeAllListeners('data');
  child.stdout!.resume();
  const docker = new Docker();
  const [c] = await docker.listContainers({ filters: { label: [`io.bytenite.run=${forward.runId}`] } });
  const info = await docker.getContainer(c.Id).inspect();
  const ip = Object.values(info.NetworkSettings.Networks)[0].IPAddress;
  return { child, forwardUrl: `http://127.0.0.1:${local}`, directUrl: `http://${ip}:${SERVICE_PORT}`, readyMs: forward.ms };
}

function ratioRow(name: string, unit: 'req/s' | 'MB/s', xs: number[], ys: number[], atLeast: number): Result {
  const medianRatio = median(xs.map((x, i) => x / ys[i]));
  return { name, unit, bytenite: xs, baseline: ys, medianBytenite: median(xs), medianBaseline: median(ys), medianRatio, target: `ratio ≥ ${atLeast}`, met: medianRatio >= atLeast };
}

/**
 * The floor of any forward written in Node on this machine: a bare TCP pipe (no WebSocket, no checks) in a
 * process of its own, in front of the same container. Returns its URL and its stop.
 */
async function plainProxy(directUrl: string): Promise<{ url: string; stop(): void }> {
  const { hostname, port } = new URL(directUrl);
  const code = `const net=require('net');const s=net.createServer((a)=>{const b=net.connect(${port},'${hostname}');a.setNoDelay(true);b.setNoDelay(true);` +
    `a.pipe(b).pipe(a);a.on('error',()=>b.destroy());b.on('error',()=>a.destroy());}).listen(0,'127.0.0.1',()=>console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(() => child.exitCode === null && child.kill('SIGKILL'));
  const local = await new Promise<number>((resolve) => child.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
  return { url: `http://127.0.0.1:${local}`, stop: () => child.kill() };
}

async function benchOne(label: string, ctx: string, agentFlags: string[], agentPid: () => number | undefined): Promise<Result[]> {
  const data = tempDir();
  const s = await serve(ctx, agentFlags, path.join(data, 'cli'));
  try {
    const through: Load[] = [];
    const direct: Load[] = [];
    const dlThrough: number[] = [];
    const dlDirect: number[] = [];
    const floor: Load[] = [];
    const floorDirect: Load[] = [];
    const proxy = label === 'embedded agent' ? await plainProxy(s.directUrl) : undefined;
    log(`ports (${label}): warm-up`);
    await load(s.forwardUrl);
    await load(s.directUrl);
    for (let i = 0; i < ROUNDS; i++) {
      through.push(await load(s.forwardUrl));
      direct.push(await load(s.directUrl));
      dlThrough.push(await download(s.forwardUrl));
      dlDirect.push(await download(s.directUrl));
      if (proxy) {
        floor.push(await load(proxy.url));
        floorDirect.push(await load(s.directUrl));
      }
      log(`ports (${label}): round ${i + 1}/${ROUNDS}: ${through[i].rps.toFixed(0)} vs ${direct[i].rps.toFixed(0)} req/s, p99 ${through[i].p99} vs ${direct[i].p99} ms; ` +
        `download ${dlThrough[i].toFixed(0)} vs ${dlDirect[i].toFixed(0)} MB/s`);
    }
    const addedP99 = median(through.map((t, i) => t.p99 - direct[i].p99));
    const cliPeak = vmHwm(s.child.pid!);
    const pid = agentPid();
    const rows: Result[] = [
      ratioRow(`port forward, ${label}: keep-alive requests/s (${CONNECTIONS} connections, ${SECONDS} s)`, 'req/s', through.map((t) => t.rps), direct.map((t) => t.rps), 0.7),
      figure(`port forward, ${label}: added p99 latency`, 'ms', [addedP99], 2, `p99 ${median(through.map((t) => t.p99))} vs ${median(direct.map((t) => t.p99))} ms direct`),
      ratioRow(`port forward, ${label}: 100 MB download`, 'MB/s', dlThrough, dlDirect, 0.5),
      figure(`port forward, ${label}: CLI peak memory${pid ? '' : ' (the CLI is the agent)'}`, 'MiB', [cliPeak]),
      figure(`port forward, ${label}: container start to port ready`, 'ms', [s.readyMs]),
    ];
    if (pid) rows.splice(4, 0, figure(`port forward, ${label}: agent peak memory`, 'MiB', [vmHwm(pid)]));
    if (proxy) {
      proxy.stop();
      const row = ratioRow('floor: a bare Node TCP pipe proxy in its own process, keep-alive requests/s', 'req/s', floor.map((t) => t.rps), floorDirect.map((t) => t.rps), 0.7);
      rows.push({ ...row, target: '', met: null, note: `p99 ${median(floor.map((t) => t.p99))} vs ${median(floorDirect.map((t) => t.p99))} ms direct` });
    }
    return rows;
  } finally {
    s.child.kill('SIGINT');
    await new Promise((r) => s.child.once('close', r));
  }
}

export async function benchPorts(): Promise<Result[]> {
  const ctx = serviceContext();
  onCleanup(() => rmSync(ctx, { recursive: true, force: true }));
  const embedded = await benchOne('embedded agent', ctx, [], () => undefined);
  const agent = await startAgentProcess(path.join(tempDir(), 'data'));
  try {
    agent.resetPeak();
    return [...embedded, ...(await benchOne('standalone agent', ctx, agent.flags, () => agent.pid))];
  } finally {
    await agent.stop();
  }
}
