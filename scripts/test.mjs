// `npm test`: every suite, one closing line. Unit, agent (real Docker Engine) and webview (Chromium) tests
// run under node's test runner; the editor suites (real VS Code via code-server) run after them. Prints
// `N passed, N failed` over all of them and exits non-zero when anything failed.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';

const files = ['test/unit', 'test/agent', 'test/webview'].flatMap((dir) =>
  readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort().map((f) => `${dir}/${f}`));

function run(cmd, args, onLine) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    child.on('close', (code) => {
      if (buf) onLine(buf);
      resolve(code ?? 1);
    });
  });
}

let passed = 0;
let failed = 0;
const tsx = 'node_modules/.bin/tsx';
// One file at a time: the agent tests share one Docker Engine and measure what it does.
const nodeCode = await run(tsx, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...files], (line) => {
  const m = /^# (pass|fail) (\d+)$/.exec(line);
  if (m) m[1] === 'pass' ? (passed += Number(m[2])) : (failed += Number(m[2]));
});
if (nodeCode !== 0 && failed === 0) failed++; // the runner itself failed (a file that does not load)
let editorSeen = false;
const editorCode = await run('npm', ['run', '--silent', 'test:editor'], (line) => {
  const m = /^(\d+) passed, (\d+) failed$/.exec(line.trim());
  if (m) {
    editorSeen = true;
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
});
if (editorCode !== 0 && !editorSeen) failed++;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 || nodeCode !== 0 || editorCode !== 0 ? 1 : 0);
