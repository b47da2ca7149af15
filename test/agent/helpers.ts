/**
 * Helpers for tests against a real Docker Engine and a real agent over a real WebSocket. Images are
 * built FROM scratch with Debian's static busybox, since no registry can be reached.
 */
import { spawn, ChildProcess } from 'node:child_process';
import net from 'node:net';
import { existsSync, mkdtempSync, copyFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import WebSocket from 'ws';
import { startAgent, AgentOptions, AgentServer } from '../../agent/server';
import { createLogger } from '../../agent/log';
import { AgentMessage, RunEvent } from '../../agent/protocol';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'bytenite.js');
export const docker = new Docker();
const BUSYBOX = '/bin/busybox';

export function tmpDir(prefix = 'bytenite-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * A build context: busybox as the base, the given files, and a Dockerfile of the base lines plus `extra`.
 * `uniq` makes the digest differ from other tests' so a cold start really is cold.
 */
export function makeContext(files: Record<string, string> = {}, extra = '', opts: { uniq?: boolean } = {}): string {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: install Debian's busybox-static (scripts/setup.sh does)`);
  const dir = tmpDir('bytenite-ctx-');
  copyFileSync(BUSYBOX, path.join(dir, 'busybox'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  const uniq = opts.uniq ? `LABEL test.uniq=${randomBytes(6).toString('hex')}\n` : '';
  writeFileSync(path.join(dir, 'Dockerfile'),
    `FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\n${uniq}${extra}`);
  return dir;
}

export interface TestAgent extends AgentServer {
  token: string;
  dataDir: string;
}

export async function startTestAgent(opts: Partial<AgentOptions> = {}): Promise<TestAgent> {
  const token = randomBytes(16).toString('hex');
  const dataDir = tmpDir('bytenite-data-');
  const agent = await startAgent({
    host: '127.0.0.1', port: 0, token, dataDir, log: createLogger(process.env.BYTENITE_LOG_LEVEL ?? 'silent'),
    stopGraceSeconds: 2, ...opts,
  });
  return Object.assign(agent, { token, dataDir });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `bytenite` CLI as a user would. */
export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return runNode([CLI, ...args], { cwd: opts.cwd, env: { BYTENITE_DATA_DIR: sharedDataDir(), ...opts.env } });
}

/** Runs node with `args` (a script and its arguments), collecting its output. */
export function runNode(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let shared: string | undefined;
function sharedDataDir(): string {
  return (shared ??= tmpDir('bytenite-cli-data-'));
}

/** The protocol events a `--json` run printed on stdout. */
export function jsonEvents(stdout: string): Array<{ runId: string; seq: number; event: RunEvent }> {
  return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** A raw protocol client: sends JSON or bytes, and waits for the frames it is told to expect. */
export class RawClient {
  readonly messages: AgentMessage[] = [];
  private waiters: Array<() => void> = [];
  closeCode?: number;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (!isBinary) this.messages.push(JSON.parse(data.toString()));
      for (const w of this.waiters) w();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const w of this.waiters) w();
    });
  }

  static async open(url: string, token: string | undefined): Promise<RawClient> {
    const ws = new WebSocket(url, { headers: token ? { Authorization: `Bearer ${token}` } : {}, maxPayload: 64 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return new RawClient(ws);
  }

  /** Opens a connection and completes the hello exchange. */
  static async ready(agent: TestAgent): Promise<RawClient> {
    const c = await RawClient.open(agent.url, agent.token);
    c.send({ type: 'hello', id: 'h', protocol: 1, client: 'raw-test' });
    await c.reply('h');
    return c;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Waits for the first message that matches, looking at those already received too. */
  async waitFor<T extends AgentMessage>(pred: (m: AgentMessage) => m is T, timeoutMs?: number): Promise<T>;
  async waitFor(pred: (m: AgentMessage) => boolean, timeoutMs?: number): Promise<AgentMessage>;
  async waitFor(pred: (m: AgentMessage) => boolean, timeoutMs = 30_000): Promise<AgentMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(pred);
      if (found) return found;
      if (this.closeCode !== undefined) throw new Error(`connection closed (${this.closeCode}) while waiting`);
      if (Date.now() > deadline) throw new Error(`timed out; got: ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
      this.waiters = [];
    }
  }

  reply(id: string): Promise<AgentMessage> {
    return this.waitFor((m) => 'inReplyTo' in m && m.inReplyTo === id);
  }

  events(runId: string): Array<{ seq: number; event: RunEvent }> {
    return this.messages.flatMap((m) => (m.type === 'event' && m.runId === runId ? [{ seq: m.seq, event: m.event }] : []));
  }

  async final(runId: string, timeoutMs = 60_000): Promise<RunEvent> {
    const m = await this.waitFor((x) => x.type === 'event' && x.runId === runId && ['exited', 'failed', 'cancelled'].includes(x.event.kind), timeoutMs);
    return (m as Extract<AgentMessage, { type: 'event' }>).event;
  }

  close(): void {
    this.ws.close();
  }
}

/** Containers, running or not, of a run: those with its label, and a hot one it took (named after it). */
/** Resolves once `cond` holds, checked every 20 ms; fails naming `what` after `timeoutMs`. */
export async function eventually(what: string, timeoutMs: number, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function containersOf(runId: string): Promise<number> {
  const labelled = await docker.listContainers({ all: true, filters: { label: [`io.bytenite.run=${runId}`] } });
  const named = await docker.listContainers({ all: true, filters: { name: [`bytenite-${runId}`] } });
  return new Set([...labelled, ...named].map((c) => c.Id)).size;
}

export function cleanup(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** Downloads a run's output archive into memory (small outputs in tests; clients stream to disk). */
export async function outputsTar(client: import('../../agent/client/agentClient').AgentClient, runId: string): Promise<{ tar: Buffer; files: number }> {
  const { Writable } = await import('node:stream');
  const chunks: Buffer[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { chunks.push(Buffer.from(c)); cb(); } });
  const end = await client.downloadOutputs(runId, sink);
  return { tar: Buffer.concat(chunks), files: end.files };
}

// ---- a real agent process ----

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface AgentProcess {
  url: string;
  child: ChildProcess;
}

/** A real agent process (`bytenite agent`), as an operator starts one; `args`: more agent flags. */
export async function spawnAgent(dataDir: string, tokenFile: string, port: number, env: Record<string, string> = {}, args: string[] = []): Promise<AgentProcess> {
  const child = spawn(process.execPath, [CLI, 'agent', '--port', String(port), '--data-dir', dataDir, '--token-file', tokenFile, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BYTENITE_LOG_LEVEL: 'warn', ...env },
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return { url: await listeningUrl(child, () => err), child };
}

/** The URL an agent process prints once it listens; rejects with the end of its log if it exits first. */
export function listeningUrl(child: ChildProcess, log: () => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening (ws:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`the agent exited (${code}): ${log().slice(-2000)}`)));
  });
}

/** Ends a test's agent the way an operator would (SIGTERM), so it removes what it keeps for later runs. */
export function stopAgent(p: AgentProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
    p.child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    p.child.kill('SIGTERM');
  });
}

