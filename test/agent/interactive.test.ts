// `bytenite run -i` and `run -it` on the real engine, through a real agent with tenants, the CLI on a real
// pseudo-terminal (`script`, as a user's terminal): a prompt, a typed command's output, a resize seen by
// `stty size`, Ctrl-C that interrupts a `sleep` and leaves the shell going, the shell's exit code; piped
// stdin to its end (2 MiB: flow control); the idle timeout; a CLI that goes away (the run outlives it, then
// is stopped after the grace period); another tenant's run's stdin is "no run".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../../agent/client/agentClient';
import { TunnelRefused } from '../../agent/client/openTunnel';
import type { RunEvent } from '../../agent/protocol';
import { CLI, cleanup, makeContext, startTestAgent, tmpDir, type TestAgent } from './helpers';

const GRACE_MS = 2000;
const dirs: string[] = [];
let agent: TestAgent;
let ctx = '';
let tokenFile = '';

before(async () => {
  const tokens = new Map([['token-alpha-0123456789', 'alpha'], ['token-beta-0123456789', 'beta']]);
  agent = await startTestAgent({ tokens, interactiveGraceMs: GRACE_MS });
  dirs.push(agent.dataDir);
  const dir = tmpDir('bytenite-interactive-');
  dirs.push(dir);
  tokenFile = path.join(dir, 'alpha');
  writeFileSync(tokenFile, 'token-alpha-0123456789\n', { mode: 0o600 });
  ctx = makeContext({}, 'CMD ["sh"]\n', { uniq: true });
  dirs.push(ctx);
});

after(async () => {
  await agent?.close();
  cleanup(...dirs);
});

const on = () => ['--agent', agent.url, '--token-file', tokenFile, '--cpus', '0.5', '--memory', '64m'];
const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

/** The CLI on a pseudo-terminal of 100 × 30 (`script`), typed into as a person would, its screen read back. */
class Terminal {
  readonly child: ChildProcess;
  out = '';
  readonly exited: Promise<number | null>;
  /** Touching this file makes the terminal 120 × 40 (a window resized), from outside the CLI. */
  readonly resizeFlag = path.join(tmpDir('bytenite-pty-'), 'resize');

  constructor(args: string[]) {
    dirs.push(path.dirname(this.resizeFlag));
    const cli = [process.execPath, CLI, ...args].map(quote).join(' ');
    // The resize comes from a job of the terminal's own session: the kernel then signals the CLI (SIGWINCH).
    const resizer = `(while [ ! -f ${quote(this.resizeFlag)} ]; do sleep 0.1; done; stty cols 120 rows 40 </dev/tty) &`;
    this.child = spawn('script', ['-qefc', `stty cols 100 rows 30; ${resizer} ${cli}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => (this.out += d));
    this.child.stderr!.on('data', (d) => (this.out += d));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  type(text: string): void {
    this.child.stdin!.write(text);
  }

  /** Waits until the screen (from `from` on) matches, failing with what it shows. */
  async see(re: RegExp, from = 0, ms = 90_000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const m = re.exec(this.out.slice(from));
      if (m) return from + m.index + m[0].length;
      if (Date.now() - t0 > ms) throw new Error(`not seen ${re} within ${ms} ms; the terminal shows:\n${this.out.slice(from)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test('run -it: a prompt, typed commands\' output, a resize, Ctrl-C to the program, the shell\'s exit code', async () => {
  const term = new Terminal(['run', '-it', path.join(ctx, 'Dockerfile'), ...on(), '--', 'sh']);
  let at = await term.see(/\/ # /);
  term.type('echo $((6*7)); tty\r');
  at = await term.see(/[\r\n]42\s+\/dev\/pts\/\d+/, at);
  term.type('stty size\r');
  at = await term.see(/[\r\n]30 100[\r\n]/, at);
  writeFileSync(term.resizeFlag, '');
  await new Promise((r) => setTimeout(r, 1000));
  term.type('stty size\r');
  at = await term.see(/[\r\n]40 120[\r\n]/, at);
  // Quoted so that only the echo's output, never its echoed command line, says "slept".
  term.type('sleep 60; echo sl""ept\r');
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = Date.now();
  term.type('\x03');
  term.type('echo after-$((1+1))\r');
  at = await term.see(/[\r\n]after-2[\r\n]/, at);
  assert.ok(Date.now() - t0 < 20_000, 'Ctrl-C interrupted the sleep');
  assert.doesNotMatch(term.out, /slept/);
  term.type('exit 3\r');
  assert.equal(await term.exited, 3, term.out);
  assert.match(term.out.slice(at), /exited 3/);
});

test('run -i: piped stdin reaches the program to its end (2 MiB, the program reading slower than it arrives)', async () => {
  const child = spawn(process.execPath, [CLI, 'run', '-i', path.join(ctx, 'Dockerfile'), ...on(), '--', 'sh', '-c', 'sleep 1; wc -c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  child.stdin.on('error', () => {});
  child.stdin.end(Buffer.alloc(2 * 1024 * 1024, 'x'));
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err);
  assert.equal(out.trim(), String(2 * 1024 * 1024));
});

test('--idle-timeout: a forgotten shell is warned, then stopped, and the run says why', async () => {
  const t0 = Date.now();
  const term = new Terminal(['run', '-it', path.join(ctx, 'Dockerfile'), ...on(), '--idle-timeout', '3s', '--', 'sh']);
  const at = await term.see(/\/ # /);
  const warned = await term.see(/no input or output for [\d.]+s: the run stops in [\d.]+s/, at, 30_000);
  await term.see(/stopped after 3s with no input or output \(its --idle-timeout\)/, warned, 30_000);
  await term.see(/failed \(timeout\)/, warned);
  assert.notEqual(await term.exited, 0);
  assert.ok(Date.now() - t0 < 60_000);
});

test('a CLI that goes away: the run outlives it, no other tenant reaches its stdin, and it is stopped after the grace period', async () => {
  const term = new Terminal(['run', '-it', path.join(ctx, 'Dockerfile'), ...on(), '--', 'sh']);
  await term.see(/\/ # /);
  const alpha = await AgentClient.connect(agent.url, { token: 'token-alpha-0123456789' });
  const beta = await AgentClient.connect(agent.url, { token: 'token-beta-0123456789' });
  try {
    const run = (await alpha.list()).find((r) => r.state === 'running' && !r.final);
    assert.ok(run, 'the run is running');
    // Another tenant's run is answered as a run that does not exist, word for word.
    const refused = await beta.stdin(run.runId).then(() => undefined, (e: TunnelRefused) => e);
    const missing = await beta.stdin('r-0000000000000000').then(() => undefined, (e: TunnelRefused) => e);
    assert.equal(refused?.status, 404);
    assert.equal(refused?.message.replace(run.runId, 'RUN'), missing?.message.replace('r-0000000000000000', 'RUN'));
    // The CLI is killed (its terminal closed, its connection dropped): the run goes on for the grace period.
    term.child.kill('SIGKILL');
    const events: RunEvent[] = [];
    const ended = new Promise<void>((resolve) => {
      void alpha.attach(run.runId, 0, (_seq, e) => {
        events.push(e);
        if (e.kind === 'exited' || e.kind === 'failed' || e.kind === 'cancelled') resolve();
      });
    });
    const killedAt = Date.now();
    await new Promise((r) => setTimeout(r, GRACE_MS / 2));
    assert.equal((await alpha.list()).find((r) => r.runId === run.runId)?.state, 'running', 'the run outlived its client');
    await ended;
    assert.ok(Date.now() - killedAt >= GRACE_MS - 200, 'stopped no sooner than the grace period');
    const final = events.at(-1)!;
    assert.equal(final.kind, 'failed');
    assert.match((final as { message: string }).message, /no client was attached to its stdin for 2s/);
  } finally {
    alpha.close();
    beta.close();
  }
});

test('attach to an -it run whose CLI went away: the shell is the same one, typed into again, and its exit code is attach\'s', async () => {
  // An agent of its own with a grace long enough for a new CLI to start on a loaded machine.
  const tokens = new Map([['token-alpha-0123456789', 'alpha']]);
  const own = await startTestAgent({ tokens, interactiveGraceMs: 20_000 });
  dirs.push(own.dataDir);
  const flags = ['--agent', own.url, '--token-file', tokenFile];
  const first = new Terminal(['run', '-it', path.join(ctx, 'Dockerfile'), ...flags, '--cpus', '0.5', '--memory', '64m', '--', 'sh']);
  try {
    await first.see(/\/ # /);
    first.type('KEPT=sh-$((40+2))\r');
    await new Promise((r) => setTimeout(r, 500));
    const alpha = await AgentClient.connect(own.url, { token: 'token-alpha-0123456789' });
    const run = (await alpha.list()).find((r) => r.state === 'running');
    assert.ok(run, 'the run is running');
    assert.deepEqual(run.interactive, { tty: true });
    first.child.kill('SIGKILL');
    await first.exited;
    // A client that goes says EOF on its way out (a closed terminal's stdin ends): with a terminal that is not
    // the program's end of input, and the next client must still reach it.
    const leaving = await alpha.stdin(run.runId);
    leaving.send(JSON.stringify({ eof: true }));
    await new Promise((r) => setTimeout(r, 300));
    leaving.close();
    alpha.close();

    const again = new Terminal(['attach', run.runId, ...flags]);
    // The replay shows what the shell printed before; once attach says it has the input, typing is ours.
    await again.see(/KEPT=sh/);
    const at = await again.see(/attached to run r-\S+'s input \(this terminal is raw/);
    again.type('echo "got $KEPT"; tty\r');
    await again.see(/got sh-42\s+\/dev\/pts\/\d+/, at);
    again.type('exit 3\r');
    assert.equal(await again.exited, 3, again.out);
  } finally {
    first.child.kill('SIGKILL');
    await own.close();
  }
});
