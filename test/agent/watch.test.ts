// `bytenite run --watch` on the real engine: a changed source file stops the run and starts the next one
// with the new file; a file .dockerignore leaves out changes nothing; Ctrl-C ends the watch with 130 and
// leaves no container.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, cleanup, containersOf, makeContext, tmpDir } from './helpers';

const dirs: string[] = [];
after(() => cleanup(...dirs));

async function until(what: string, ms: number, ok: () => boolean, show: () => string): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms\n${show()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('--watch runs again on a changed source file, not on an ignored one, and Ctrl-C ends it', async () => {
  // The program stops at once on SIGTERM, so each restart is quick.
  const ctx = makeContext({ 'app.txt': 'version one\n', '.dockerignore': 'scratch.log\n', 'scratch.log': '' },
    'COPY app.txt /app.txt\nCMD ["sh", "-c", "trap \'exit 0\' TERM; cat /app.txt; while true; do sleep 0.1; done"]\n', { uniq: true });
  dirs.push(ctx);
  const cwd = tmpDir('bytenite-watch-cwd-');
  dirs.push(cwd);
  const child = spawn(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), '--watch', '--memory', '64m', '--data-dir', path.join(cwd, 'data')],
    { cwd, env: { ...process.env, BYTENITE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const show = () => `stdout:\n${out}\nstderr:\n${err}`;
  try {
    await until('the first run\'s line', 120_000, () => out.includes('version one\n'), show);
    writeFileSync(path.join(ctx, 'app.txt'), 'version two\n');
    await until('the second run with the new file', 120_000, () => out.includes('version two\n'), show);
    assert.match(err, /app\.txt changed: stopping r-[0-9a-f]+ to run again/);
    assert.equal((err.match(/running again/g) ?? []).length, 1, show());
    // An ignored file: nothing starts (given well past the watcher's settle time).
    appendFileSync(path.join(ctx, 'scratch.log'), 'noise\n');
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((err.match(/running again/g) ?? []).length, 1, `an ignored file restarted the run\n${show()}`);
    assert.equal(out, 'version one\nversion two\n');
    const runId = [...err.matchAll(/stopping (r-[0-9a-f]+)/g)].map((m) => m[1])[0];
    child.kill('SIGINT');
    assert.equal(await exited, 130, show());
    assert.match(err, /stopping the run and the watch/);
    assert.equal(await containersOf(runId), 0, 'the first run left no container');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
