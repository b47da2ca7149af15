/**
 * A two-node Docker Swarm built on this one machine for the tests, beside (never on) the CI's own engine:
 * a manager engine and a worker engine, each in its own network namespace joined by a veth pair on a private
 * /24, each with its own data root, exec root, pid file and socket, and Debian's `docker-registry` listening
 * on the manager's address. Both engines list the registry as insecure; the worker pulls from it (so it is
 * not started with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1, which turns pulling off altogether).
 * `stop()` removes everything it made. It throws with the reason when something is missing.
 */
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { listeningUrl } from './helpers';

export interface SwarmCluster {
  managerSocket: string;
  workerSocket: string;
  /** HOST:PORT of the registry. */
  registry: string;
  manager: Docker;
  worker: Docker;
  workerNodeId: string;
  managerNodeId: string;
  setupMs: number;
  /** Stops the worker's engine (as `systemctl stop docker` would on that machine). */
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${ms / 1000} s${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startSwarmCluster(opts: { workerGpu?: string } = {}): Promise<SwarmCluster> {
  const t0 = Date.now();
  if (process.getuid?.() !== 0) throw new Error('the Swarm test builds network namespaces and engines: it must run as root');
  for (const bin of ['dockerd', 'docker-registry', 'nsenter', 'ip']) {
    try {
      sh('sh', ['-c', `command -v ${bin}`]);
    } catch {
      throw new Error(`${bin} is missing: apt-get install docker.io docker-registry util-linux iproute2`);
    }
  }
  const id = randomBytes(3).toString('hex');
  const net = `10.${200 + (parseInt(id.slice(0, 2), 16) % 50)}.${parseInt(id.slice(2, 4), 16)}`;
  const base = path.join(os.tmpdir(), `bn-swarm-${id}`);
  const made = { netns: [] as string[], pids: [] as number[], dirs: [base] as string[], children: [] as ChildProcess[] };
  const nodes = { m: { ns: `bns-${id}-m`, addr: `${net}.1`, sock: `/run/bytenite-swarm-${id}-m.sock`, exec: `/run/bns-${id}-m`, pid: `/run/bns-${id}-m.pid` },
    w: { ns: `bns-${id}-w`, addr: `${net}.2`, sock: `/run/bytenite-swarm-${id}-w.sock`, exec: `/run/bns-${id}-w`, pid: `/run/bns-${id}-w.pid` } };
  const registry = `${nodes.m.addr}:5000`;

  const stopEngine = async (n: typeof nodes.m) => {
    if (!existsSync(n.pid)) return;
    const pid = Number(readFileSync(n.pid, 'utf8').trim());
    if (!pid || !pidAlive(pid)) return;
    process.kill(pid, 'SIGTERM');
    await until(`dockerd ${pid} did not stop`, 30_000, async () => (pidAlive(pid) ? undefined : true)).catch(() => process.kill(pid, 'SIGKILL'));
  };
  const stop = async () => {
    const problems: string[] = [];
    for (const n of [nodes.w, nodes.m]) await stopEngine(n).catch((e) => problems.push((e as Error).message));
    for (const c of made.children) if (c.exitCode === null) c.kill('SIGTERM');
    for (const ns of made.netns) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    for (const n of [nodes.m, nodes.w]) for (const p of [n.sock, n.pid, n.exec]) rmSync(p, { recursive: true, force: true });
    for (const d of made.dirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch (e) {
        problems.push(`could not remove ${d}: ${(e as Error).message}`);
      }
    }
    if (problems.length) throw new Error(`Swarm test cluster teardown: ${problems.join('; ')}`);
  };

  try {
    for (const n of [nodes.m, nodes.w]) {
      sh('ip', ['netns', 'add', n.ns]);
      made.netns.push(n.ns);
    }
    const vm = `bn${id}m`;
    const vw = `bn${id}w`;
    sh('ip', ['link', 'add', vm, 'type', 'veth', 'peer', 'name', vw]);
    sh('ip', ['link', 'set', vm, 'netns', nodes.m.ns]);
    sh('ip', ['link', 'set', vw, 'netns', nodes.w.ns]);
    for (const [n, dev] of [[nodes.m, vm], [nodes.w, vw]] as const) {
      const ns = `--net=/var/run/netns/${n.ns}`;
      sh('nsenter', [ns, 'ip', 'link', 'set', 'lo', 'up']);
      sh('nsenter', [ns, 'ip', 'addr', 'add', `${n.addr}/24`, 'dev', dev]);
      sh('nsenter', [ns, 'ip', 'link', 'set', dev, 'up']);
    }
    mkdirSync(path.join(base, 'registry'), { recursive: true });
    writeFileSync(path.join(base, 'registry.yml'),
      `version: 0.1\nlog: { level: warn }\nstorage: { filesystem: { rootdirectory: ${base}/registry }, delete: { enabled: true } }\nhttp: { addr: "${registry}" }\n`);
    const regLog = openSync(path.join(base, 'registry.log'), 'a');
    const reg = spawn('nsenter', [`--net=/var/run/netns/${nodes.m.ns}`, 'docker-registry', 'serve', path.join(base, 'registry.yml')],
      { stdio: ['ignore', regLog, regLog], detached: true });
    reg.unref();
    made.children.push(reg);
    for (const [key, n] of Object.entries(nodes)) {
      const dir = path.join(base, key);
      mkdirSync(dir, { recursive: true });
      const logFd = openSync(path.join(dir, 'dockerd.log'), 'a');
      const args = [`--net=/var/run/netns/${n.ns}`, 'dockerd', '--data-root', path.join(dir, 'data'), '--exec-root', n.exec,
        '--pidfile', n.pid, '-H', `unix://${n.sock}`, '--insecure-registry', registry];
      if (key === 'w' && opts.workerGpu) args.push('--node-generic-resource', opts.workerGpu);
      const child = spawn('nsenter', args, { stdio: ['ignore', logFd, logFd], detached: true });
      child.unref();
      made.children.push(child);
    }
    const manager = new Docker({ socketPath: nodes.m.sock });
    const worker = new Docker({ socketPath: nodes.w.sock });
    const logOf = (k: string) => readFileSync(path.join(base, k, 'dockerd.log'), 'utf8').split('\n').filter((l) => /level=(error|fatal)/.test(l)).slice(-3).join(' | ');
    await until(`the manager engine did not answer (${logOf('m')})`, 30_000, async () => manager.ping().then(() => true));
    await until(`the worker engine did not answer (${logOf('w')})`, 30_000, async () => worker.ping().then(() => true));
    // A 1 s heartbeat: a lost node is marked down in a few seconds rather than the default ~15.
    await manager.swarmInit({ ListenAddr: `${nodes.m.addr}:2377`, AdvertiseAddr: nodes.m.addr, Spec: { Dispatcher: { HeartbeatPeriod: 1e9 } } });
    const swarm = (await manager.swarmInspect()) as { JoinTokens: { Worker: string } };
    await worker.swarmJoin({ ListenAddr: `${nodes.w.addr}:2377`, AdvertiseAddr: nodes.w.addr, RemoteAddrs: [`${nodes.m.addr}:2377`], JoinToken: swarm.JoinTokens.Worker });
    const managerNodeId = ((await manager.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    const workerNodeId = ((await worker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    await until('the worker did not show as ready on the manager', 30_000, async () => {
      const list = (await manager.listNodes()) as Array<{ ID: string; Status: { State: string } }>;
      return list.find((n) => n.ID === workerNodeId)?.Status.State === 'ready' ? true : undefined;
    });
    await until(`the registry did not answer on ${registry} (${readFileSync(path.join(base, 'registry.log'), 'utf8').slice(-300)})`, 15_000, async () => {
      sh('nsenter', [`--net=/var/run/netns/${nodes.m.ns}`, 'bash', '-c', `exec 3<>/dev/tcp/${nodes.m.addr}/5000`]);
      return true;
    });
    return {
      managerSocket: nodes.m.sock, workerSocket: nodes.w.sock, registry, manager, worker, workerNodeId, managerNodeId,
      setupMs: Date.now() - t0,
      stopWorker: () => stopEngine(nodes.w),
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw new Error(`could not build the two-node Swarm for the test: ${(err as Error).message}`);
  }
}

/**
 * `bytenite agent --engine swarm` on the cluster's manager, with the worker's engine as a node engine, on a free
 * port; resolves once it listens. `log()` is its log so far (at info), for failure messages.
 */
export async function spawnSwarmAgent(cluster: SwarmCluster, dataDir: string, cli: string, cwd: string): Promise<{ child: ChildProcess; url: string; log(): string }> {
  let log = '';
  const child = spawn(process.execPath, [cli, 'agent', '--engine', 'swarm', '--registry', cluster.registry,
    '--node-engine', `unix://${cluster.workerSocket}`, '--port', '0', '--data-dir', dataDir], {
    cwd, env: { ...process.env, DOCKER_HOST: `unix://${cluster.managerSocket}`, BYTENITE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (d) => (log += d));
  return { child, url: await listeningUrl(child, () => log), log: () => log };
}

/** A Swarm test's end: every service the agent made is gone (checked) before the folders and the cluster go. */
export async function endSwarmTest(cluster: SwarmCluster | undefined, cleanupDirs: () => void): Promise<void> {
  try {
    if (cluster) {
      const left = await cluster.manager.listServices({ filters: { label: ['io.bytenite.managed=1'] } }).catch(() => []);
      assert.equal(left.length, 0, `services left behind: ${left.map((s) => s.Spec?.Name).join(', ')}`);
    }
  } finally {
    cleanupDirs();
    await cluster?.stop();
  }
}
