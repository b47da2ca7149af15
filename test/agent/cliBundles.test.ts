// The CLI's bundles as they start: a client of a running agent works with the client bundle alone (the agent's
// code is never loaded for it), and the V8 code cache is written once, reused, and replaced when damaged.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, cleanup, makeContext, runCli, runNode, startTestAgent, tmpDir } from './helpers';

const dirs: string[] = [];
after(() => cleanup(...dirs));

const node = (args: string[], env: Record<string, string> = {}) => runNode(args, { env });

test('run, hardware and runs against a running agent need only the client bundle', async () => {
  const bin = tmpDir('bytenite-client-only-');
  dirs.push(bin);
  for (const f of ['bytenite.js', 'bytenite-cli.js']) copyFileSync(path.join(ROOT, 'dist', f), path.join(bin, f));
  assert.ok(!existsSync(path.join(bin, 'bytenite-agent.js')));
  const agent = await startTestAgent();
  try {
    const ctx = makeContext({}, 'CMD ["echo", "from the client bundle"]\n');
    dirs.push(ctx);
    const tokenFile = path.join(bin, 'token');
    writeFileSync(tokenFile, agent.token);
    const flags = ['--agent', agent.url, '--token-file', tokenFile];
    const cli = path.join(bin, 'bytenite.js');
    // The caches of this throwaway copy stay in its own folder.
    const env = { XDG_CACHE_HOME: path.join(bin, 'cache') };
    const run = await node([cli, 'run', path.join(ctx, 'Dockerfile'), ...flags], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'from the client bundle\n');
    for (const cmd of ['hardware', 'runs']) {
      const r = await node([cli, cmd, '--json', ...flags], env);
      assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    }
    // One cache per command: the modules each loads differ, and `run` must not start from one `runs` wrote.
    const caches = readdirSync(path.join(bin, 'cache', 'bytenite', 'code')).filter((f) => f.startsWith('bytenite-cli-'));
    assert.deepEqual(caches.map((f) => f.replace(/^.*--/, '')).sort(), ['hardware.bin', 'run.bin', 'runs.bin']);
  } finally {
    await agent.close();
  }
});

test('the code cache is written by the first start, reused by the next, and replaced when damaged', async () => {
  const cacheHome = tmpDir('bytenite-cache-');
  dirs.push(cacheHome);
  const env = { XDG_CACHE_HOME: cacheHome };
  const codeDir = path.join(cacheHome, 'bytenite', 'code');
  const cliCache = () => readdirSync(codeDir).filter((f) => f.startsWith('bytenite-cli-')).map((f) => path.join(codeDir, f));

  const first = await runCli(['--version'], { env });
  assert.equal(first.code, 0, first.stderr);
  const [cache, ...more] = cliCache();
  assert.ok(cache && more.length === 0, `one cache file for the client bundle, got ${readdirSync(codeDir).join(', ')}`);
  const written = statSync(cache).mtimeMs;

  const second = await runCli(['--version'], { env });
  assert.equal(second.stdout, first.stdout);
  assert.equal(statSync(cache).mtimeMs, written, 'an accepted cache is not written again');

  writeFileSync(cache, 'not a code cache');
  const third = await runCli(['--version'], { env });
  assert.equal(third.code, 0, third.stderr);
  assert.equal(third.stdout, first.stdout);
  assert.notEqual(readFileSync(cache, 'utf8'), 'not a code cache', 'a refused cache is replaced');

  const off = tmpDir('bytenite-cache-off-');
  dirs.push(off);
  const plain = await runCli(['--version'], { env: { XDG_CACHE_HOME: off, BYTENITE_CODE_CACHE: '0' } });
  assert.equal(plain.stdout, first.stdout);
  assert.ok(!existsSync(path.join(off, 'bytenite', 'code')), 'BYTENITE_CODE_CACHE=0 writes no cache');
});
