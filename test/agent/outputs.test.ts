// Outputs are the job's result: written by images that run as a non-root user, brought back whole at any
// size with bounded memory on both sides, kept on the agent until fetched (and fetched again later), a
// download cut in the middle resumes to the same bytes, and an output over the agent's budget is refused
// in words that name the limit, with the run's record kept.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AgentClient } from '../../agent/client/agentClient';
import { fetchOutputs } from '../../agent/client/fetchOutputs';
import { startRun } from '../../agent/client/startRun';
import {
  AgentProcess, CLI, cleanup, freePort, jsonEvents, makeContext, runCli, spawnAgent, startTestAgent, stopAgent, TestAgent, tmpDir,
} from './helpers';

const dirs: string[] = [];
let agent: TestAgent;
let tokenFile: string;
after(async () => {
  await agent?.close();
  cleanup(...dirs);
});
before(async () => {
  agent = await startTestAgent({ outputsBudgetBytes: 48 * 1024 * 1024 });
  dirs.push(agent.dataDir);
  tokenFile = path.join(agent.dataDir, 'client-token');
  writeFileSync(tokenFile, agent.token + '\n', { mode: 0o600 });
});

const remote = () => ['--agent', agent.url, '--token-file', tokenFile];
const sha256File = (file: string) => new Promise<string>((resolve, reject) => {
  const h = createHash('sha256');
  createReadStream(file).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
});

/** A context whose container writes `mib` MiB of random bytes to $BYTENITE_OUTPUT_DIR/big and prints their SHA-256. */
function bigOutput(mib: number, extra = ''): string {
  const dir = makeContext({}, `${extra}CMD ["sh", "-c", "dd if=/dev/urandom of=$BYTENITE_OUTPUT_DIR/big bs=1M count=${mib} 2>/dev/null && sha256sum $BYTENITE_OUTPUT_DIR/big | cut -d' ' -f1"]\n`, { uniq: true });
  dirs.push(dir);
  return dir;
}

test('an image that runs as USER 1000, or as a user its Dockerfile creates, writes its outputs and they come back', async () => {
  const byId = makeContext({}, 'USER 1000\nCMD ["sh", "-c", "id -u > $BYTENITE_OUTPUT_DIR/who && echo ok"]\n', { uniq: true });
  const byName = makeContext({}, [
    'RUN mkdir -p /etc && echo "root:x:0:0::/root:/bin/sh" > /etc/passwd && echo "app:x:1234:4321::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:4321:" > /etc/group',
    'USER app',
    'CMD ["sh", "-c", "id > $BYTENITE_OUTPUT_DIR/who && mkdir $BYTENITE_OUTPUT_DIR/sub && echo deep > $BYTENITE_OUTPUT_DIR/sub/f && echo ok"]',
  ].join('\n') + '\n', { uniq: true });
  dirs.push(byId, byName);
  for (const [ctx, who] of [[byId, /^1000\n$/], [byName, /uid=1234\(app\) gid=4321\(app\)/]] as const) {
    const out = tmpDir('bytenite-out-');
    dirs.push(out);
    const r = await runCli(['run', path.join(ctx, 'Dockerfile'), ...remote(), '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
    assert.match(readFileSync(path.join(out, 'who'), 'utf8'), who);
    assert.doesNotMatch(r.stderr, /Permission denied/);
  }
  // The run's own --user decides too, as with docker run --user.
  const out = tmpDir('bytenite-out-');
  dirs.push(out);
  const r = await runCli(['run', path.join(byId, 'Dockerfile'), ...remote(), '--out', out, '--user', '2000:3000']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(path.join(out, 'who'), 'utf8'), '2000\n');
});

test('outputs over the outputs budget are refused in words that name the limit and the flag; the run\'s record stays', async () => {
  const ctx = bigOutput(60);
  const out = tmpDir('bytenite-out-');
  dirs.push(out);
  const r = await runCli(['run', path.join(ctx, 'Dockerfile'), ...remote(), '--out', out]);
  assert.equal(r.code, 125, 'the program succeeded, but its result did not come back');
  assert.match(r.stderr, /outputs not kept: they passed .* more than the outputs budget of 48\.0 MiB allows; raise it with `bytenite agent --outputs-budget SIZE`/);
  assert.deepEqual(readdirSync(out), [], 'nothing written');
  const listed = await runCli(['runs', '--json', ...remote()]);
  const runs = listed.stdout.trim().split('\n').map((l) => JSON.parse(l)) as Array<{ runId: string; final?: { outputs: { notKept?: string } } }>;
  const mine = runs.find((x) => x.final?.outputs.notKept);
  assert.ok(mine, 'the run is still listed, with the reason');
  const again = await runCli(['outputs', mine.runId, ...remote(), '--out', out]);
  assert.equal(again.code, 125);
  assert.match(again.stderr, /outputs budget of 48\.0 MiB/);
  // The budget and what is used of it are there to see.
  const hw = await runCli(['hardware', ...remote()]);
  assert.match(hw.stdout, /^ {2}outputs +\S+ \S+ of 48\.0 MiB \(--outputs-budget\): \d+ run\(s\), \d+ not fetched yet; kept until fetched, at most 7 days$/m);
  assert.match(hw.stdout, /^ {2}journal /m);
});

test('outputs are kept after the run\'s own download and fetched again later with `bytenite outputs`', async () => {
  const ctx = bigOutput(3);
  const first = tmpDir('bytenite-out-');
  const later = tmpDir('bytenite-out-');
  dirs.push(first, later);
  const r = await runCli(['run', path.join(ctx, 'Dockerfile'), ...remote(), '--out', first, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const events = jsonEvents(r.stdout);
  const runId = events[0].runId;
  const final = events.at(-1)!.event;
  assert.equal(final.kind, 'exited');
  if (final.kind === 'exited') {
    assert.equal(final.outputs.files, 1);
    assert.ok(final.outputs.expiresAt && Date.parse(final.outputs.expiresAt) > Date.now() + 6 * 86_400_000, 'kept for the default 7 days');
  }
  const printed = events.filter((e) => e.event.kind === 'log' && e.event.stream === 'stdout').map((e) => (e.event as { data: string }).data).join('').trim();
  assert.equal(await sha256File(path.join(first, 'big')), printed);
  const got = await runCli(['outputs', runId, ...remote(), '--out', later]);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stderr, /1 output file\(s\), 3\.0 MiB/);
  assert.equal(await sha256File(path.join(later, 'big')), printed);
  assert.deepEqual(readdirSync(later), ['big'], 'no staging folder left');
});

/** A TCP relay to the agent that can cut its connections after so many bytes towards the client, and refuse new ones. */
class Cutter {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  cutAfter = Infinity;
  refuse = false;
  cuts = 0;
  port = 0;
  constructor(target: number) {
    this.server = net.createServer((client) => {
      if (this.refuse) return client.destroy();
      const upstream = net.connect(target, '127.0.0.1');
      this.sockets.add(client).add(upstream);
      let down = 0;
      const drop = () => { client.destroy(); upstream.destroy(); };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.on('data', (d: Buffer) => {
        down += d.length;
        if (down > this.cutAfter) {
          this.cuts++;
          this.cutAfter = Infinity; // once
          drop();
          return;
        }
        client.write(d);
      });
    });
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `ws://127.0.0.1:${this.port}`;
  }
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

test('a download cut in the middle resumes at the byte it stopped and ends with the same SHA-256; one that cannot resume leaves no file', async () => {
  const ctx = bigOutput(40);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  let printed = '';
  const run = await startRun(client, {
    contextDir: ctx, dockerfile: path.join(ctx, 'Dockerfile'), hardware: { cpus: 1, memoryMiB: 256 },
    onEvent: (_s, e) => { if (e.kind === 'log' && e.stream === 'stdout') printed += e.data; },
  });
  const final = await run.done;
  client.close();
  assert.equal(final.outputs.files, 1);
  const cutter = new Cutter(agent.port);
  const url = await cutter.listen();
  try {
    cutter.cutAfter = 15 * 1024 * 1024;
    const out = tmpDir('bytenite-out-');
    dirs.push(out);
    const r = await runCli(['outputs', run.runId, '--agent', url, '--token-file', tokenFile, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cutter.cuts, 1, 'the connection was cut once');
    assert.match(r.stderr, /download cut .*resuming at \d+(\.\d)? MiB/);
    assert.equal(await sha256File(path.join(out, 'big')), printed.trim());
    assert.deepEqual(readdirSync(out), ['big']);

    // Cut again, and nothing answers afterwards: the download gives up with a clear message and no file.
    cutter.cutAfter = 10 * 1024 * 1024;
    const token = agent.token;
    const lost = tmpDir('bytenite-out-');
    dirs.push(lost);
    let first = true;
    const err = await fetchOutputs({
      runId: run.runId, outDir: path.join(lost, 'x'), retryForMs: 1500,
      connect: async () => {
        if (!first) cutter.refuse = true;
        first = false;
        return AgentClient.connect(url, { token, timeoutMs: 2000 });
      },
    }).then(() => undefined, (e: Error) => e);
    assert.ok(err, 'the download failed');
    assert.match(err.message, new RegExp(`stopped at .* and could not resume .*bytenite outputs ${run.runId}`));
    assert.deepEqual(readdirSync(lost), [], 'no folder, no partial file');
  } finally {
    await cutter.close();
  }
});

test('a 1 GiB output comes back intact through a standalone agent, with the CLI and the agent each under 200 MB', async () => {
  const home = tmpDir('bytenite-big-');
  dirs.push(home);
  const tokenFile2 = path.join(home, 'token');
  writeFileSync(tokenFile2, 'big-test-token-0123456789abcdef\n', { mode: 0o600 });
  let standalone: AgentProcess | undefined;
  try {
    standalone = await spawnAgent(path.join(home, 'data'), tokenFile2, await freePort(), {}, ['--hot-pool', '0']);
    const ctx = bigOutput(1024);
    const out = path.join(home, 'out');
    const child = spawn(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), '--memory', '512m', '--agent', standalone.url, '--token-file', tokenFile2, '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let cliPeak = 0;
    const poll = setInterval(() => { cliPeak = Math.max(cliPeak, peakRss(child.pid!)); }, 50);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearInterval(poll);
    assert.equal(code, 0, stderr);
    const agentPeak = peakRss(standalone.child.pid!);
    assert.ok(existsSync(path.join(out, 'big')));
    assert.equal(await sha256File(path.join(out, 'big')), stdout.trim(), 'the same bytes as the container wrote');
    assert.ok(cliPeak > 0 && cliPeak < 200 * 1024 * 1024, `CLI peak ${(cliPeak / 1048576).toFixed(0)} MiB`);
    assert.ok(agentPeak > 0 && agentPeak < 200 * 1024 * 1024, `agent peak ${(agentPeak / 1048576).toFixed(0)} MiB`);
  } finally {
    if (standalone) await stopAgent(standalone);
  }
});

/** The peak resident memory of a process so far (VmHWM), in bytes; 0 once it has gone. */
function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
