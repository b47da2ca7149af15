/**
 * The bundled agent, started as a child process on 127.0.0.1 with a fresh token (the default when no
 * remote agent is selected). Its CLI prints `listening ws://127.0.0.1:PORT` as the first stdout line and
 * writes a new token into the token file when there is none.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as vscode from 'vscode';
import type { Log } from '../log';
import { config } from '../config';
import { pingDocker } from './dockerCheck';

export interface Endpoint {
  url: string;
  token: string;
  /** Extra CA certificate(s) for a `wss://` agent with a self-signed certificate. */
  ca?: Buffer;
}

export class LocalAgentError extends Error {}

/**
 * Runs the agent script with a watch on stdin: when the extension host goes away, even killed, the pipe
 * closes and the agent stops (SIGTERM: it cancels its runs and exits) instead of living on as an orphan.
 */
const EXIT_WITH_PARENT =
  "process.stdin.on('end',()=>process.kill(process.pid,'SIGTERM'));process.stdin.on('error',()=>{});" +
  'process.stdin.resume();require(process.argv[1]);';

export class LocalAgent implements vscode.Disposable {
  private proc?: ChildProcess;
  private starting?: Promise<Endpoint>;
  private endpoint?: Endpoint;
  private readonly exited = new vscode.EventEmitter<string>();
  /** Fires with a reason when the process ends on its own or is stopped. */
  readonly onDidExit = this.exited.event;

  constructor(
    private readonly agentScript: string,
    private readonly storageDir: string,
    private readonly log: Log,
  ) {}

  get pid(): number | undefined {
    return this.running ? this.proc?.pid : undefined;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null;
  }

  /** Starts the agent if it is not running; resolves with its URL and token. */
  start(): Promise<Endpoint> {
    if (this.endpoint && this.running) return Promise.resolve(this.endpoint);
    return (this.starting ??= this.doStart().finally(() => (this.starting = undefined)));
  }

  private async doStart(): Promise<Endpoint> {
    const context = config.localDockerContext();
    const docker = await pingDocker(context);
    if (!docker.ok) {
      const looked = docker.looked.length ? ` Looked at: ${docker.looked.join(', ')}.` : '';
      throw new LocalAgentError(
        `No Docker Engine answers at ${docker.where}: ${docker.error}.${looked} Start the engine ` +
          '(https://docs.docker.com/engine/install/), choose another with the setting bytenite.localAgent.dockerContext, ' +
          'or run on a remote agent: ByteNite: Add Remote Agent.',
      );
    }
    this.log.info(`the local agent's engine: ${docker.where}`);
    const tokenFile = path.join(this.storageDir, 'local-agent.token');
    const dataDir = path.join(this.storageDir, 'local-agent');
    await fs.mkdir(dataDir, { recursive: true });
    // A fresh token on every start: the agent writes a new one when the file is missing.
    await fs.rm(tokenFile, { force: true });
    const args = [this.agentScript, 'agent', '--port', '0', '--token-file', tokenFile, '--data-dir', dataDir];
    if (context) args.push('--docker-context', context);
    const hotPool = config.localHotPool();
    if (hotPool !== undefined) args.push('--hot-pool', String(hotPool));
    this.log.info(`starting the local agent: ${process.execPath} ${args.join(' ')}`);
    args.unshift('-e', EXIT_WITH_PARENT);
    const t0 = Date.now();
    // In desktop VS Code process.execPath is Electron: ELECTRON_RUN_AS_NODE makes it plain Node.
    const proc = spawn(process.execPath, args, {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc = proc;
    readline.createInterface({ input: proc.stderr! }).on('line', (l) => this.log.trace(`[agent] ${l}`));
    const url = await new Promise<string>((resolve, reject) => {
      const lines = readline.createInterface({ input: proc.stdout! });
      const timer = setTimeout(() => reject(new LocalAgentError('the local agent did not start listening within 20 s; see the output')), 20_000);
      lines.once('line', (line) => {
        clearTimeout(timer);
        const m = /^listening (wss?:\/\/\S+)/.exec(line.trim());
        if (m) resolve(m[1]);
        else reject(new LocalAgentError(`the local agent printed "${line}" instead of its address`));
        lines.on('line', (l) => this.log.trace(`[agent] ${l}`));
      });
      proc.once('error', (err) => {
        clearTimeout(timer);
        reject(new LocalAgentError(`cannot start the local agent: ${err.message}`));
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new LocalAgentError(`the local agent exited (${signal ?? code}) before listening; see the output`));
      });
    }).catch((err) => {
      proc.kill();
      this.proc = undefined;
      throw err;
    });
    proc.once('exit', (code, signal) => {
      if (this.proc === proc) {
        this.proc = undefined;
        this.endpoint = undefined;
      }
      const why = `the local agent exited (${signal ?? `code ${code}`})`;
      this.log.info(why);
      this.exited.fire(why);
    });
    const token = (await fs.readFile(tokenFile, 'utf8')).trim();
    this.endpoint = { url, token };
    this.log.info(`local agent listening at ${url} (started in ${Date.now() - t0} ms)`);
    return this.endpoint;
  }

  /** Stops the process (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    this.endpoint = undefined;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }

  dispose(): void {
    this.proc?.kill('SIGTERM');
    this.exited.dispose();
  }
}
