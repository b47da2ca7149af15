// End to end through the `bytenite` CLI, as a user runs it: the embedded agent, a real Docker Engine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cleanup, jsonEvents, makeContext, runCli, startTestAgent, tmpDir } from './helpers';
import { Catalog } from '../../agent/protocol';

const dirs: string[] = [];
after(() => cleanup(...dirs));
function ctx(...args: Parameters<typeof makeContext>): string {
  const d = makeContext(...args);
  dirs.push(d);
  return d;
}

test('logs arrive complete and in order, stdout and stderr apart; the exit code propagates', async () => {
  const dir = ctx();
  const script = 'i=1; while [ $i -le 3000 ]; do echo "out $i"; if [ $((i % 1000)) -eq 0 ]; then echo "err $i" >&2; fi; i=$((i+1)); done; exit 7';
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--', 'sh', '-c', script]);
  assert.equal(r.code, 7, r.stderr);
  const expected = Array.from({ length: 3000 }, (_, i) => `out ${i + 1}`).join('\n') + '\n';
  assert.equal(r.stdout, expected);
  const errLines = r.stderr.split('\n').filter((l) => l.startsWith('err '));
  assert.deepEqual(errLines, ['err 1000', 'err 2000', 'err 3000']);
  assert.match(r.stderr, /exited 7/);
});

test('a burst of 200,000 lines from a container that exits at once arrives whole', async () => {
  const dir = ctx();
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--', 'sh', '-c', "seq 1 200000 | sed 's/^/line /'"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines.length, 200001, 'every line and the final newline');
  assert.equal(lines[0], 'line 1');
  assert.equal(lines[199999], 'line 200000');
});

test('a second identical run is warm: no upload, no build', async () => {
  const dir = ctx({ 'app.sh': 'echo warm-test\n' }, 'COPY app.sh /app.sh\nCMD ["sh", "/app.sh"]\n', { uniq: true });
  const first = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--json']);
  assert.equal(first.code, 0, first.stderr);
  const e1 = jsonEvents(first.stdout).map((e) => e.event);
  assert.equal(e1.find((e) => e.kind === 'starting')?.start, 'cold');
  assert.ok(e1.some((e) => e.kind === 'building'), 'the cold run builds');
  assert.ok(e1.some((e) => e.kind === 'uploading'), 'the cold run uploads');

  const second = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--json']);
  assert.equal(second.code, 0, second.stderr);
  const e2 = jsonEvents(second.stdout).map((e) => e.event);
  const final = e2.at(-1)!;
  assert.equal(final.kind, 'exited');
  assert.equal(final.kind === 'exited' && final.start, 'warm');
  assert.ok(!e2.some((e) => e.kind === 'building' || e.kind === 'uploading'), 'the warm run neither uploads nor builds');
  assert.ok(e2.some((e) => e.kind === 'log' && e.data.includes('warm-test')));
  // Sequence numbers: 1, 2, 3... with no gap.
  assert.deepEqual(jsonEvents(second.stdout).map((e) => e.seq), e2.map((_, i) => i + 1));
});

test('an OOM kill is reported: exit 137, OOM-killed', async () => {
  const dir = ctx();
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '32m', '--json', '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=200M', 'count=1']);
  assert.equal(r.code, 137, r.stderr);
  const final = jsonEvents(r.stdout).at(-1)!.event;
  assert.equal(final.kind, 'exited');
  assert.equal(final.kind === 'exited' && final.oomKilled, true);
  assert.equal(final.kind === 'exited' && final.exitCode, 137);
});

test('.dockerignore\'d files are not in the container', async () => {
  const dir = ctx(
    { 'keep.txt': 'k', 'secret.env': 'TOKEN=x', 'logs/a.log': 'a', 'logs/keep.log': 'b', '.dockerignore': 'secret.env\nlogs/*.log\n!logs/keep.log\n' },
    'COPY . /ctx\n', { uniq: true },
  );
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--', 'sh', '-c', 'cd /ctx && find . -type f | sort']);
  assert.equal(r.code, 0, r.stderr);
  const files = r.stdout.trim().split('\n');
  assert.ok(files.includes('./keep.txt'));
  assert.ok(files.includes('./logs/keep.log'));
  assert.ok(!files.includes('./secret.env'), 'ignored file is absent');
  assert.ok(!files.includes('./logs/a.log'), 'ignored file is absent');
});

test('CPU and memory limits are visible inside the container', async () => {
  const dir = ctx();
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--cpus', '0.5', '--memory', '96m', '--',
    'sh', '-c', 'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max']);
  assert.equal(r.code, 0, r.stderr);
  const [quota, period, mem, pids] = r.stdout.trim().split('\n').map(Number);
  assert.equal(quota / period, 0.5);
  assert.equal(mem, 96 * 1024 * 1024);
  assert.equal(pids, 1024, 'the default pids limit');
});

test('files written to the output folder come back to --out', async () => {
  const dir = ctx();
  const out = tmpDir();
  dirs.push(out);
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--out', out, '--',
    'sh', '-c', 'mkdir -p $BYTENITE_OUTPUT_DIR/sub && echo result-42 > $BYTENITE_OUTPUT_DIR/sub/r.txt']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(path.join(out, 'sub', 'r.txt'), 'utf8'), 'result-42\n');
});

test('the cost is the allocated resources times the billed duration', async () => {
  const dir = ctx();
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--cpus', '1', '--memory', '512m', '--json', '--', 'sleep', '1.3']);
  assert.equal(r.code, 0, r.stderr);
  const final = jsonEvents(r.stdout).at(-1)!.event;
  assert.ok(final.kind === 'exited');
  const hw = await runCli(['hardware', '--json']);
  const prices = (JSON.parse(hw.stdout) as Catalog).prices;
  assert.ok(final.durationMs >= 1250 && final.durationMs < 5000, `duration ${final.durationMs}`);
  const billed = Math.ceil(final.durationMs / prices.incrementMs) * prices.incrementMs;
  assert.equal(final.cost.billedMs, billed);
  const expected = (1 * prices.vcpuSecond + 0.5 * prices.gibSecond) * (billed / 1000);
  assert.ok(Math.abs(final.cost.total - expected) < 1e-12, `${final.cost.total} vs ${expected}`);
  assert.ok(final.cost.reference.length > 0, 'priced at the reference rates too');
});

test('a run that cannot happen exits 125 with the reason; a bad flag exits 2', async () => {
  const dir = ctx();
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--gpu', 'a100:1']);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /a100/);
  const bad = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', 'lots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /cannot read memory size "lots"/);
});

test('the CLI reaches a separate agent with --agent and --token-file, and a wrong token is refused', async () => {
  const agent = await startTestAgent();
  const tokenFile = path.join(tmpDir(), 'token');
  dirs.push(path.dirname(tokenFile), agent.dataDir);
  try {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(tokenFile, agent.token + '\n');
    const dir = ctx();
    const ok = await runCli(['run', path.join(dir, 'Dockerfile'), '--memory', '64m', '--agent', agent.url, '--token-file', tokenFile, '--', 'echo', 'remote-ok']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'remote-ok\n');
    // The finished run is listed, with its outcome, by `bytenite runs`.
    const runs = await runCli(['runs', '--json', '--agent', agent.url, '--token-file', tokenFile]);
    assert.equal(runs.code, 0, runs.stderr);
    const listed = runs.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(listed.length, 1);
    assert.equal(listed[0].state, 'exited');
    assert.equal(listed[0].final.exitCode, 0);
    const plain = await runCli(['runs', '--agent', agent.url, '--token-file', tokenFile]);
    assert.match(plain.stdout, new RegExp(`^${listed[0].runId}  .* exited 0 +(warm|cold) · `));
    writeFileSync(tokenFile, 'wrong\n');
    const denied = await runCli(['run', path.join(dir, 'Dockerfile'), '--agent', agent.url, '--token-file', tokenFile]);
    assert.equal(denied.code, 125);
    assert.match(denied.stderr, /401/);
  } finally {
    await agent.close();
  }
});
