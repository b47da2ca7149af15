/**
 * Entry of the extension-host suite (`extensionTestsPath`). Runs mocha inside VS Code's extension host
 * (code-server here, @vscode/test-electron where VS Code can be downloaded) and, because mocha's output
 * only reaches the browser console in code-server, writes the results as JSON next to the workspace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import Mocha from 'mocha';

export interface SuiteResults {
  passed: number;
  failed: number;
  tests: { title: string; state: 'passed' | 'failed'; durationMs?: number; error?: string }[];
  notes: Record<string, unknown>;
}

export const notes: Record<string, unknown> = {};

export function run(): Promise<void> {
  // BYTENITE_EDITOR_GREP: only the tests whose title matches, for a quicker loop while developing.
  const grep = process.env.BYTENITE_EDITOR_GREP;
  const mocha = new Mocha({ ui: 'bdd', timeout: 180_000, color: false, reporter: 'spec', ...(grep ? { grep } : {}) });
  // The suite is bundled into this file: give its describe/it the BDD globals, then load it.
  mocha.suite.emit('pre-require', globalThis, 'extension.test', mocha);
  require('./extension.test');
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
  const out = process.env.BYTENITE_EDITOR_RESULTS ?? path.join(path.dirname(folder), 'extension-host-results.json');
  const results: SuiteResults = { passed: 0, failed: 0, tests: [], notes };
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      fs.writeFileSync(out, JSON.stringify(results, null, 2));
      if (failures > 0) reject(new Error(`${failures} test(s) failed`));
      else resolve();
    });
    runner.on('pass', (t) => {
      results.passed++;
      results.tests.push({ title: t.fullTitle(), state: 'passed', durationMs: t.duration });
    });
    runner.on('fail', (t, err: Error) => {
      results.failed++;
      results.tests.push({ title: t.fullTitle(), state: 'failed', error: err.stack ?? err.message });
    });
  });
}
