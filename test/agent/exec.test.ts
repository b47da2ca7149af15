// `bytenite exec` on the real engine, through a real agent with tenants: a command's stdout, stderr and exit
// code apart; stdin piped with -i; a terminal with -t (under `script`, which gives the CLI a pty) whose size
// reaches the container; another tenant's run is "no run" word for word; a run that ends cuts the session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import type { RunEvent } from '../../agent/protocol';
import { CLI, cleanup, makeContext, startTestAgent, tmpDir, type TestAgent } from './helpers';

const dirs: string[] = [];
let agent: TestAgent;
let alpha: AgentClient;
let runId = '';
let done: Promise<unknown>;
let tokenFile = '';
let betaFile = '';
/** Every event of the run the tests exec into. */
const events: RunEvent[] = [];

function cli(args: string[], input?: string, wrap = false): Promise<{ code: number | null; out: string; err: string }> {
  const argv = [CLI, ...args];
  const [cmd, cmdArgs] = wrap
    // `script` runs the CLI on a pseudo-terminal of 100 × 30, as a user's terminal would be.
    ? ['script', ['-qefc', `stty cols 100 rows 30; ${[process.execPath, ...argv].map((a) => `'${a}'`).join(' ')}`, '/dev/null']]
    : [process.execPath, argv];
  return new Promise((resolve) => {
    const child = spawn(cmd as string, cmdArgs as string[], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
    if (input !== undefined) {
      // Typed a moment after start, as a person would (a pty drops what arrives before it is set up).
      setTimeout(() => child.stdin.end(input), wrap ? 1500 : 0);
    }
  });
}

before(async () => {
  const tokens = new Map([['token-alpha-0123456789', 'alpha'], ['token-beta-0123456789', 'beta']]);
  agent = await startTestAgent({ tokens });
  dirs.push(agent.dataDir);
  const dir = tmpDir('bytenite-exec-');
  dirs.push(dir);
  tokenFile = path.join(dir, 'alpha');
  betaFile = path.join(dir, 'beta');
  writeFileSync(tokenFile, 'token-alpha-0123456789\n', { mode: 0o600 });
  writeFileSync(betaFile, 'token-beta-0123456789\n', { mode: 0o600 });
  const ctx = makeContext({}, 'CMD ["sh", "-c", "echo started; exec sleep 300"]\n', { uniq: true });
  dirs.push(ctx);
  alpha = await AgentClient.connect(agent.url, { token: 'token-alpha-0123456789' });
  const started = await startRun(Promise.resolve(alpha), {
    contextDir: ctx, dockerfile: path.join(ctx, 'Dockerfile'), hardware: { cpus: 0.5, memoryMiB: 64 }, onEvent: (_s, e) => events.push(e),
  });
  runId = started.runId;
  done = started.done;
  const t0 = Date.now();
  while (!events.some((e) => e.kind === 'log')) {
    if (Date.now() - t0 > 120_000) throw new Error(`the run did not start: ${JSON.stringify(events.at(-1))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  alpha?.close();
  await agent?.close();
  cleanup(...dirs);
});

const on = (file: string) => ['--agent', agent.url, '--token-file', file];

test('exec: stdout and stderr apart, the exit code, and the run\'s own user and process space', async () => {
  const r = await cli(['exec', runId, ...on(tokenFile), '--', 'sh', '-c', 'echo out; echo err >&2; cat /proc/1/cmdline | tr "\\0" " "; exit 3']);
  assert.equal(r.code, 3, r.err);
  assert.equal(r.out, 'out\nsleep 300 ');
  assert.equal(r.err, 'err\n');
});

test('exec is in the run\'s journal (who, when, what, how it ended), never what it printed', async () => {
  const before = events.length;
  const r = await cli(['exec', runId, ...on(tokenFile), '--', 'sh', '-c', 'echo marker-$((40+2))-printed; exit 4']);
  assert.equal(r.code, 4, r.err);
  assert.equal(r.out, 'marker-42-printed\n');
  const t0 = Date.now();
  while (!events.slice(before).some((e) => e.kind === 'exec' && e.state === 'ended') && Date.now() - t0 < 10_000) await new Promise((res) => setTimeout(res, 50));
  const audit = events.slice(before).filter((e) => e.kind === 'exec');
  assert.deepEqual(audit.map((e) => e.kind === 'exec' && [e.state, e.by, e.command.join(' '), e.tty, e.exitCode]), [
    ['started', 'alpha from 127.0.0.1', 'sh -c echo marker-$((40+2))-printed; exit 4', false, undefined],
    ['ended', 'alpha from 127.0.0.1', 'sh -c echo marker-$((40+2))-printed; exit 4', false, 4],
  ]);
  // What the command printed is nowhere in the agent's data folder (its journal, its logs).
  const { spawnSync } = await import('node:child_process');
  const grep = spawnSync('grep', ['-rl', 'marker-42-printed', agent.dataDir], { encoding: 'utf8' });
  assert.equal(grep.status, 1, `found in ${grep.stdout}`);
  assert.ok(spawnSync('grep', ['-rlF', 'marker-$((40+2))-printed', agent.dataDir]).status === 0, 'the command itself is journaled');
});

test('exec -i: what is piped in reaches the command, and its end is the end of input', async () => {
  const r = await cli(['exec', '-i', runId, ...on(tokenFile), '--', 'sh', '-c', 'wc -l'], 'a\nb\nc\n');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), '3');
});

test('exec -it: a terminal of the client\'s size, keystrokes in, the shell\'s exit code out', async () => {
  const r = await cli(['exec', '-it', runId, ...on(tokenFile), '--', 'sh'], 'tty; stty size; echo $((6*7)); exit 5\r', true);
  assert.equal(r.code, 5, r.out + r.err);
  assert.match(r.out, /\/dev\/pts\/\d+/);
  assert.match(r.out, /30 100/);
  assert.match(r.out, /[\r\n]42[\r\n]/);
});

test('exec: another tenant\'s run is no run, word for word; a missing command or run id is a usage error', async () => {
  const theirs = await cli(['exec', runId, ...on(betaFile), '--', 'true']);
  const missing = await cli(['exec', 'r-0000000000000000', ...on(betaFile), '--', 'true']);
  assert.equal(theirs.code, 125);
  assert.equal(theirs.err.replace(runId, 'RUN'), missing.err.replace('r-0000000000000000', 'RUN'));
  assert.match(theirs.err, /no run r-[0-9a-f]+ on this agent/);
  assert.equal((await cli(['exec', runId, ...on(tokenFile)])).code, 2);
});

test('exec -it: a client that goes hangs its command up (the engine alone would keep it running)', async () => {
  const sleeping = async () => (await cli(['exec', runId, ...on(tokenFile), '--', 'ps'])).out.split('\n').filter((l) => /sleep 4242/.test(l));
  let out = '';
  const ws = await alpha.exec(runId, { cmd: ['sh', '-c', 'echo up; exec sleep 4242'], tty: true, stdin: true, cols: 80, rows: 24 },
    (early) => early.on('message', (d: Buffer, binary: boolean) => { if (binary) out += d.subarray(1).toString(); }));
  const t0 = Date.now();
  while (!out.includes('up')) {
    assert.ok(Date.now() - t0 < 10_000, `the command's first output came with the socket: ${JSON.stringify(out)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal((await sleeping()).length, 1, 'the command runs');
  ws.close(1000);
  const t1 = Date.now();
  while ((await sleeping()).length) {
    assert.ok(Date.now() - t1 < 10_000, 'the command is gone after its client closed');
    await new Promise((r) => setTimeout(r, 200));
  }
});

test('exec: the run ending cuts the session, with the reason', async () => {
  const session = cli(['exec', runId, ...on(tokenFile), '--', 'sleep', '120']);
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = Date.now();
  await alpha.cancel(runId);
  const r = await session;
  await done;
  // Killed with its container (137, as docker exec reports it), or cut by the agent with the reason first.
  assert.ok(Date.now() - t0 < 30_000, 'the session ended with the run');
  if (r.code === 125) assert.match(r.err, /bytenite: .*(cancel|stopp|ended|over)/i);
  else assert.equal(r.code, 137, r.err);
});
