/**
 * Starts and stops code-server 4.100.3 (from scripts/install-editor-tools.sh) for the editor tests: a free
 * port, its own user-data and extensions folders, no auth, no telemetry, no workspace trust prompt. It is
 * started as a process group leader so that stopping it also ends what it started (the extension host and
 * the local agent the extension spawns).
 */
import { ChildProcess, spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '../..');
export const CODE_SERVER = path.join(REPO, '.tools/code-server/node_modules/.bin/code-server');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface CodeServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  logFile: string;
}

export interface CodeServerOptions {
  dir: string;
  workspace: string;
  /** A .vsix to install first. */
  vsix?: string;
  env?: Record<string, string>;
  /** User settings added to the defaults below (e.g. the extension's own). */
  settings?: Record<string, unknown>;
}

function prepare(dir: string, settings: Record<string, unknown> = {}) {
  const ud = path.join(dir, 'user-data');
  const exts = path.join(dir, 'extensions');
  fs.mkdirSync(path.join(ud, 'User'), { recursive: true });
  fs.mkdirSync(exts, { recursive: true });
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, 'auth: none\n');
  fs.writeFileSync(path.join(ud, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'security.workspace.trust.enabled': false,
    'workbench.tips.enabled': false,
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'telemetry.telemetryLevel': 'off',
    'workbench.enableExperiments': false,
    'chat.commandCenter.enabled': false,
    'update.mode': 'none',
    // The DOM renderer: the terminal's text is in the page for the UI suite to read (a canvas hides it).
    'terminal.integrated.gpuAcceleration': 'off',
    ...settings,
  }, null, 2));
  return { ud, exts, config };
}

export async function startCodeServer(opts: CodeServerOptions): Promise<CodeServer> {
  if (!fs.existsSync(CODE_SERVER)) throw new Error(`${CODE_SERVER} is missing: run scripts/install-editor-tools.sh`);
  const { ud, exts, config } = prepare(opts.dir, opts.settings);
  if (opts.vsix) {
    execFileSync(CODE_SERVER, ['--config', config, '--user-data-dir', ud, '--extensions-dir', exts, '--install-extension', opts.vsix], { stdio: 'pipe' });
  }
  const port = await freePort();
  const logFile = path.join(opts.dir, 'code-server.log');
  const log = fs.openSync(logFile, 'w');
  const proc: ChildProcess = spawn(CODE_SERVER, [
    '--config', config, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--user-data-dir', ud,
    '--extensions-dir', exts, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', opts.workspace,
  ], { detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...opts.env } });
  fs.closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`code-server exited (${proc.exitCode}); see ${logFile}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`code-server did not answer on ${url} within 30 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url, port, logFile,
    async stop() {
      if (proc.exitCode !== null || proc.pid === undefined) return;
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      killGroup(proc.pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(proc.pid!, 'SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
      // Children that outlive the leader (the extension host, the local agent): end the rest of the group.
      await new Promise((r) => setTimeout(r, 500));
      killGroup(proc.pid, 'SIGKILL');
    },
  };
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
