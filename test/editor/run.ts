/**
 * `npm run test:editor`: builds, packages the .vsix, then runs the two suites in a real VS Code
 * (code-server 4.100.3, driven by Debian's Chromium):
 *   1. the extension-host suite (mocha inside the extension host, loaded through the `payload` URL);
 *   2. the UI suite (playwright-core against the workbench with the packaged .vsix installed).
 * Prints each test, the plain closing line `N passed, N failed`, and exits non-zero on any failure.
 * Every process it starts is stopped before it exits, on failure too.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as esbuild from 'esbuild';
import Mocha from 'mocha';
import { launchBrowser } from './browser';
import { REPO, startCodeServer, type CodeServer } from './codeServer';
import type { SuiteResults } from './suite/index';

const RESULTS = path.join(REPO, 'test-results');
const log = (s: string) => console.log(`[test:editor] ${s}`);

interface Tally { passed: number; failed: number; lines: string[] }
const tally: Tally = { passed: 0, failed: 0, lines: [] };
const record = (ok: boolean, title: string, extra = '') => {
  ok ? tally.passed++ : tally.failed++;
  console.log(`  ${ok ? '✓' : '✗'} ${title}${extra}`);
};

const cleanups: (() => Promise<void> | void)[] = [];
async function cleanup() {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (err) {
      console.error(`cleanup: ${(err as Error).message}`);
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void cleanup().finally(() => process.exit(130)));
}

/** A fresh copy of the fixture workspace, with busybox beside the Dockerfiles that COPY it. */
function makeWorkspace(dir: string): string {
  const ws = path.join(dir, 'workspace');
  fs.cpSync(path.join(REPO, 'test/editor/fixture/workspace'), ws, { recursive: true });
  for (const d of ['', 'labelled', 'slow', 'many', 'web', 'watched'].map((d) => path.join(ws, d))) fs.copyFileSync('/bin/busybox', path.join(d, 'busybox'));
  return ws;
}

/** The extension's output channel (one file per extension host) and code-server's log, for post-mortems. */
function copyExtensionLogs(dir: string, suite: string): void {
  const to = path.join(RESULTS, 'logs', suite);
  fs.rmSync(to, { recursive: true, force: true });
  fs.mkdirSync(to, { recursive: true });
  const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  const logs = path.join(dir, 'user-data', 'logs');
  if (fs.existsSync(logs)) {
    for (const f of walk(logs).filter((f) => f.endsWith('ByteNite.log'))) {
      fs.copyFileSync(f, path.join(to, `${f.split(path.sep).slice(-3, -2)[0]}-ByteNite.log`));
    }
  }
  if (fs.existsSync(path.join(dir, 'code-server.log'))) fs.copyFileSync(path.join(dir, 'code-server.log'), path.join(to, 'code-server.log'));
}

async function buildAndPackage(): Promise<string> {
  let t0 = Date.now();
  const r = spawnSync('npm', ['run', '--silent', 'package'], { cwd: REPO, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run package failed');
  const vsix = path.join(REPO, 'dist', 'bytenite.vsix');
  log(`built and packaged in ${Date.now() - t0} ms: ${vsix} ${(fs.statSync(vsix).size / 1024).toFixed(0)} KiB`);
  t0 = Date.now();
  await esbuild.build({
    entryPoints: { index: path.join(REPO, 'test/editor/suite/index.ts') },
    outdir: path.join(REPO, 'out/editor-tests'), bundle: true, platform: 'node', target: 'node20', format: 'cjs',
    external: ['vscode', 'mocha'], sourcemap: 'inline', logLevel: 'warning',
  });
  return vsix;
}

async function extensionHostSuite(tmp: string): Promise<void> {
  log('extension-host suite');
  const dir = path.join(tmp, 'host');
  fs.mkdirSync(dir, { recursive: true });
  const ws = makeWorkspace(dir);
  const resultsFile = path.join(dir, 'extension-host-results.json');
  // A Docker CLI config of the test's own: the context test writes its contexts there, not in the user's ~/.docker.
  const dockerConfig = path.join(dir, 'docker-config');
  fs.mkdirSync(dockerConfig, { recursive: true });
  const cs = await startCodeServer({ dir, workspace: ws, env: { BYTENITE_EDITOR_RESULTS: resultsFile, DOCKER_CONFIG: dockerConfig } });
  cleanups.push(() => cs.stop());
  const browser = await launchBrowser(dir);
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  const remote = (p: string) => `vscode-remote://127.0.0.1:${cs.port}${p}`;
  const payload = [
    ['extensionDevelopmentPath', remote(REPO)],
    ['extensionTestsPath', remote(path.join(REPO, 'out/editor-tests/index.js'))],
    ['skipWelcome', 'true'],
  ];
  let exitCode: number | undefined;
  const exited = new Promise<number>((resolve) => {
    void page.exposeFunction('codeAutomationExit', (code: number) => {
      exitCode = code;
      resolve(code);
    });
  });
  const t0 = Date.now();
  await page.goto(`${cs.url}/?folder=${encodeURIComponent(ws)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
  // Well above the suite's usual 2 min: on a loaded machine one slow test (its own limit is 180 s) must still
  // end in its own failure, with its name, rather than cut the whole suite's results off.
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 900_000));
  const outcome = await Promise.race([exited, timeout]);
  await page.screenshot({ path: path.join(RESULTS, 'extension-host.png') }).catch(() => {});
  log(`extension-host suite finished in ${Date.now() - t0} ms (exit ${outcome})`);
  if (!fs.existsSync(resultsFile)) {
    record(false, 'extension-host suite', ` — no results (${outcome === 'timeout' ? 'timed out' : `exit ${exitCode}`}); see ${cs.logFile}`);
  } else {
    const res = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as SuiteResults;
    for (const t of res.tests) {
      record(t.state === 'passed', `[extension host] ${t.title}`, t.durationMs !== undefined ? ` (${t.durationMs} ms)` : '');
      if (t.error) console.log(t.error.split('\n').map((l) => `      ${l}`).join('\n'));
    }
    log(`notes: ${JSON.stringify(res.notes)}`);
    fs.copyFileSync(resultsFile, path.join(RESULTS, 'extension-host-results.json'));
  }
  await cleanup();
  copyExtensionLogs(dir, 'host');
}

/** A second agent, as a remote one would be: its own process, port and token. */
async function startRemoteAgent(dir: string): Promise<{ url: string; token: string }> {
  const tokenFile = path.join(dir, 'remote-agent.token');
  const proc = spawn(process.execPath, [path.join(REPO, 'dist/bytenite.js'), 'agent', '--port', '0', '--token-file', tokenFile,
    '--data-dir', path.join(dir, 'remote-agent')], { stdio: ['ignore', 'pipe', 'ignore'] });
  cleanups.push(() => new Promise<void>((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  }));
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`remote agent exited (${code})`)));
  });
  const url = /^listening (\S+)/.exec(line)?.[1];
  if (!url) throw new Error(`remote agent printed: ${line}`);
  return { url, token: fs.readFileSync(tokenFile, 'utf8').trim() };
}

async function uiSuite(tmp: string, vsix: string): Promise<void> {
  log('UI suite');
  const dir = path.join(tmp, 'ui');
  fs.mkdirSync(dir, { recursive: true });
  const ws = makeWorkspace(dir);
  const t0 = Date.now();
  const remote = await startRemoteAgent(dir);
  const cs: CodeServer = await startCodeServer({ dir, workspace: ws, vsix });
  cleanups.push(() => cs.stop());
  const browser = await launchBrowser(dir);
  cleanups.push(() => browser.close());
  const g = globalThis as Record<string, unknown>;
  g.__bytenite_ui = { browser, url: `${cs.url}/?folder=${encodeURIComponent(ws)}`, results: RESULTS, workspace: ws, remote };
  const mocha = new Mocha({ timeout: 180_000, reporter: 'dot' });
  mocha.addFile(path.join(REPO, 'test/editor/ui/runOnByteNite.ui.ts'));
  await mocha.loadFilesAsync();
  await new Promise<void>((resolve) => {
    const runner = mocha.run(() => resolve());
    runner.on('pass', (t) => record(true, `[UI] ${t.fullTitle()}`, ` (${t.duration} ms)`));
    runner.on('fail', (t, err: Error) => {
      record(false, `[UI] ${t.fullTitle()}`);
      console.log((err.stack ?? err.message).split('\n').slice(0, 12).map((l) => `      ${l}`).join('\n'));
    });
  });
  log(`UI suite finished in ${Date.now() - t0} ms (code-server start included)`);
  await cleanup();
  copyExtensionLogs(dir, 'ui');
}

async function main(): Promise<number> {
  fs.mkdirSync(RESULTS, { recursive: true });
  // Screenshots of failures from an earlier run would mislead: start without them.
  for (const f of fs.readdirSync(RESULTS)) if (f.startsWith('failed-')) fs.rmSync(path.join(RESULTS, f));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bytenite-editor-'));
  try {
    const vsix = await buildAndPackage();
    const only = process.env.BYTENITE_EDITOR_ONLY; // `host` or `ui`, for a quicker loop while developing
    // BYTENITE_EDITOR_GREP=TEXT: only the extension-host tests whose title has TEXT (test/editor/suite/index.ts).
    if (only !== 'ui') await extensionHostSuite(tmp);
    if (only !== 'host') await uiSuite(tmp, vsix);
  } catch (err) {
    record(false, 'test:editor driver', `: ${(err as Error).stack ?? err}`);
  } finally {
    await cleanup();
    if (!process.env.BYTENITE_EDITOR_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  }
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  return tally.failed > 0 || tally.passed === 0 ? 1 : 0;
}

void main().then((code) => process.exit(code));
