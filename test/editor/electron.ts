/**
 * The same extension-host suite under desktop VS Code through @vscode/test-electron, for machines that
 * can download VS Code (these cannot: `npm run test:editor` runs it in code-server instead).
 *   npx tsx test/editor/electron.ts [--version 1.100.0]
 * Builds first (`npm run package`), like test:editor; the workspace is a fresh copy of the fixture.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { runTests } from '@vscode/test-electron';

const REPO = path.resolve(__dirname, '../..');

async function main(): Promise<void> {
  const i = process.argv.indexOf('--version');
  const version = i > 0 ? process.argv[i + 1] : '1.100.0';
  if (spawnSync('npm', ['run', '--silent', 'package'], { cwd: REPO, stdio: 'inherit' }).status !== 0) throw new Error('npm run package failed');
  await esbuild.build({
    entryPoints: { index: path.join(REPO, 'test/editor/suite/index.ts') }, outdir: path.join(REPO, 'out/editor-tests'),
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['vscode', 'mocha'], sourcemap: 'inline',
  });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bytenite-electron-'));
  const ws = path.join(tmp, 'workspace');
  fs.cpSync(path.join(REPO, 'test/editor/fixture/workspace'), ws, { recursive: true });
  for (const d of ['.', 'labelled', 'slow', 'many']) fs.copyFileSync('/bin/busybox', path.join(ws, d, 'busybox'));
  try {
    await runTests({
      version,
      extensionDevelopmentPath: REPO,
      extensionTestsPath: path.join(REPO, 'out/editor-tests/index.js'),
      launchArgs: [ws, '--disable-extensions', '--disable-workspace-trust', '--user-data-dir', path.join(tmp, 'user-data')],
    });
  } finally {
    const results = path.join(tmp, 'extension-host-results.json');
    if (fs.existsSync(results)) {
      const r = JSON.parse(fs.readFileSync(results, 'utf8'));
      console.log(`${r.passed} passed, ${r.failed} failed`);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
