// Nobody in: tenants see only their own runs, wss:// with a certificate the test makes, failed
// authentication slowed down, tokens and secrets kept out of logs, and containers without a network, the
// Docker socket or host paths. Real agent, real Docker Engine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AgentClient, AgentError } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { tenantDigest } from '../../agent/runs/runManager';
import { LABELS } from '../../agent/engine/engine';
import { packContext } from '../../agent/context/packContext';
import { CLI, cleanup, docker, makeContext, outputsTar, RawClient, runCli, startTestAgent, TestAgent, tmpDir } from './helpers';

const HW = { cpus: 0.5, memoryMiB: 64 };
const dirs: string[] = [];
after(() => cleanup(...dirs));
const hex = (n: number) => randomBytes(n).toString('hex');

async function runLogs(client: AgentClient, dir: string, command: string[], extra: { env?: Record<string, string>; secretEnv?: string[] } = {}) {
  const logs: string[] = [];
  let start = '';
  const run = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command, ...extra,
    onEvent: (_s, e) => {
      if (e.kind === 'log' && e.stream !== 'build') logs.push(e.data);
      if (e.kind === 'starting') start = e.start;
    },
  });
  const final = await run.done;
  return { runId: run.runId, final, out: logs.join(''), start };
}

// ---------------------------------------------------------------- tenants

test('two tenants: each lists, attaches to, cancels and downloads only its own runs; the rest is not_found', async () => {
  const alice = `alice-${hex(16)}`;
  const bob = `bob-${hex(16)}`;
  const agent = await startTestAgent({ tokens: new Map([[alice, 'alice'], [bob, 'bob']]) });
  dirs.push(agent.dataDir);
  const dir = makeContext({}, '', { uniq: true });
  dirs.push(dir);
  const a = await AgentClient.connect(agent.url, { token: alice });
  const b = await AgentClient.connect(agent.url, { token: bob });
  try {
    const ran = await runLogs(a, dir, ['sh', '-c', 'echo alice-private > $BYTENITE_OUTPUT_DIR/a.txt; echo done']);
    assert.equal(ran.final.exitCode, 0);
    assert.equal(ran.start, 'cold');

    assert.deepEqual((await a.list()).map((r) => r.runId), [ran.runId]);
    assert.deepEqual(await b.list(), [], 'bob lists none of alice\'s runs');

    // Bob asking for alice's run gets exactly what he gets for a run that does not exist, id aside.
    const ghost = `r-${hex(8)}`;
    const answer = async (runId: string, op: (id: string) => Promise<unknown>) => {
      const err = await op(runId).then(() => undefined, (e: AgentError) => e);
      assert.ok(err instanceof AgentError, `${runId}: refused`);
      return { code: err.code, message: err.message.replace(runId, 'ID') };
    };
    for (const op of [
      (id: string) => b.attach(id, 0, () => assert.fail('bob saw an event of alice\'s run')),
      (id: string) => b.cancel(id),
      (id: string) => outputsTar(b, id),
    ]) {
      const theirs = await answer(ran.runId, op);
      assert.equal(theirs.code, 'not_found');
      assert.deepEqual(theirs, await answer(ghost, op));
    }
    // Alice still can.
    const out = await outputsTar(a, ran.runId);
    assert.equal(out.files, 1);
    assert.ok(out.tar.includes(Buffer.from('alice-private')));

    // The same context is cold for bob: alice's image is neither reused nor revealed to him...
    const bobs = await runLogs(b, dir, ['echo', 'bob']);
    assert.equal(bobs.start, 'cold', 'bob does not warm-start from alice\'s image');
    assert.equal(bobs.out, 'bob\n');
    // ...and warm for alice again, from her own image (hot when her container made ahead is ready).
    const again = await runLogs(a, dir, ['echo', 'again']);
    assert.ok(again.start === 'warm' || again.start === 'hot', `alice's run started ${again.start}`);
    assert.equal(again.out, 'again\n');

    // Images carry the tenant-scoped digest, never the context digest a client could look up.
    const pack = await packContext(dir, 'Dockerfile', {});
    await pack.cleanup();
    const label = (d: string) => docker.listImages({ filters: { label: [`${LABELS.digest}=${d}`] } });
    assert.equal((await label(pack.digest)).length, 0);
    assert.equal((await label(tenantDigest(pack.digest, 'alice'))).length, 1);
    assert.equal((await label(tenantDigest(pack.digest, 'bob'))).length, 1);

    // Cancel works for the owner only, on a live run.
    const live = await startRun(a, {
      contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command: ['sleep', '30'], onEvent: () => {},
    });
    await assert.rejects(b.cancel(live.runId), (e: AgentError) => e.code === 'not_found');
    await a.cancel(live.runId);
    assert.equal((await live.done).kind, 'cancelled');
  } finally {
    a.close();
    b.close();
    await agent.close();
  }
});

// ---------------------------------------------------------------- authentication

test('repeated failed authentication from one address is refused with 429 for a while, even with the right token', async () => {
  const agent = await startTestAgent({ authLimit: { burst: 3, refillPerSecond: 2 } });
  dirs.push(agent.dataDir);
  try {
    for (let i = 0; i < 3; i++) await assert.rejects(RawClient.open(agent.url, `guess-${i}`), /HTTP 401/);
    await assert.rejects(RawClient.open(agent.url, 'guess-3'), /HTTP 429/);
    // While the address is limited, no token is even looked at: a guess cannot be confirmed.
    await assert.rejects(AgentClient.connect(agent.url, { token: agent.token }), /too many failed authentications.*429/);
    await new Promise((r) => setTimeout(r, 700));
    const c = await AgentClient.connect(agent.url, { token: agent.token });
    assert.equal(c.hello.type, 'hello');
    c.close();
  } finally {
    await agent.close();
  }
});

// ---------------------------------------------------------------- TLS, logs, secrets (the CLI as users run it)

function makeCert(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
  return { cert, key };
}

test('bytenite agent --tls-cert/--tls-key serves wss:// that the CLI verifies with --ca-file; tokens and secrets never reach the log',
  async () => {
    // Never skipped: scripts/setup.sh installs openssl, which makes the test's certificates.
    assert.equal(spawnSync('sh', ['-c', 'command -v openssl']).status, 0, 'openssl is needed to make the test certificate');
    const dir = tmpDir();
    dirs.push(dir);
    const { cert, key } = makeCert(dir, 'agent');
    const other = makeCert(dir, 'impostor');
    const tokA = `tokA${hex(20)}`;
    const tokB = `tokB${hex(20)}`;
    const wrong = `wrongtok${hex(20)}`;
    const secret = `s3cret-${hex(12)}`;
    const tokenFile = path.join(dir, 'tokens');
    writeFileSync(tokenFile, `# tenants\nalice ${tokA}\nbob ${tokB}\n`, { mode: 0o600 });
    const aliceFile = path.join(dir, 'alice.token');
    writeFileSync(aliceFile, `${tokA}\n`, { mode: 0o600 });

    const child = spawn(process.execPath, [CLI, 'agent', '--port', '0', '--data-dir', path.join(dir, 'data'), '--token-file', tokenFile,
      '--tls-cert', cert, '--tls-key', key], { env: { ...process.env, BYTENITE_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`agent exited ${code}: ${stderr}`)));
    });
    try {
      assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+$/);
      const ok = await runCli(['hardware', '--json', '--agent', url, '--token-file', aliceFile, '--ca-file', cert]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.ok(JSON.parse(ok.stdout).host.cpus > 0);

      const untrusted = await runCli(['hardware', '--agent', url, '--token-file', aliceFile]);
      assert.notEqual(untrusted.code, 0);
      assert.match(untrusted.stderr, /self[- ]signed certificate/i);
      await assert.rejects(AgentClient.connect(url, { token: tokA, ca: readFileSync(other.cert) }), /certificate/i);
      await assert.rejects(AgentClient.connect(url.replace('wss:', 'ws:'), { token: tokA, timeoutMs: 3000 }));
      await assert.rejects(AgentClient.connect(url, { token: wrong, ca: readFileSync(cert) }), /401/);
      const b = await AgentClient.connect(url, { token: tokB, ca: readFileSync(cert) });
      b.close();

      // A run with a secret: what the container prints and what the agent logs show *** instead.
      const ctx = makeContext();
      dirs.push(ctx);
      const run = await runCli(['run', path.join(ctx, 'Dockerfile'), '--memory', '64m', '--agent', url, '--token-file', aliceFile,
        '--ca-file', cert, '--secret-env', `API_KEY=${secret}`, '--', 'sh', '-c',
        'echo "key=$API_KEY"; printf "half=%s" "${API_KEY%??????}"; sleep 0.3; echo "${API_KEY#${API_KEY%??????}}"; echo "$API_KEY" >&2; printf "tail=%s" "${API_KEY%??????}"; exit 3']);
      assert.equal(run.code, 3, run.stderr);
      assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), 'the secret is not shown');
      assert.match(run.stdout, /^key=\*\*\*$/m);
      assert.match(run.stderr, /^\*\*\*$/m);
      // Printed in two writes 300 ms apart: the two halves are two chunks, hidden together.
      assert.ok(run.stdout.includes('half=***'), run.stdout);
      // Text held back as the possible start of a secret is not lost when the output ends there.
      assert.ok(run.stdout.includes(`tail=${secret.slice(0, -6)}`), run.stdout);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    assert.match(stderr, /client connected/);
    assert.match(stderr, /missing or wrong token/);
    for (const [what, value] of [['alice\'s token', tokA], ['bob\'s token', tokB], ['the wrong token', wrong], ['the secret', secret]]) {
      assert.ok(!stderr.includes(value), `${what} is in the agent's log`);
    }
  });

// ---------------------------------------------------------------- containers

const PROBE = [
  'echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort | tr "\\n" ",")"',
  // The host, as the bridge's gateway, where the test listens: reachable with a network, not without.
  'gw=$(ip route 2>/dev/null | awk \'/default/ {print $3}\'); gw=${gw:-172.17.0.1}',
  // busybox's static wget crashes in an empty image; nc speaks enough HTTP.
  'if printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 "$gw" "$PROBE_PORT" 2>/dev/null | grep -q probe-ok; then echo net=yes; else echo net=no; fi',
  'for s in /var/run/docker.sock /run/docker.sock; do [ -e $s ] && echo "socket=$s"; done',
  'echo "mounts=$(cut -d" " -f5 /proc/self/mountinfo | sort -u | tr "\\n" ",")"',
  'grep CapEff /proc/self/status',
  'true',
].join('; ');

let netAgent: TestAgent;
let noNetAgent: TestAgent;
let probeCtx: string;
before(async () => {
  netAgent = await startTestAgent();
  noNetAgent = await startTestAgent({ network: false });
  probeCtx = makeContext();
  dirs.push(netAgent.dataDir, noNetAgent.dataDir, probeCtx);
});
after(async () => {
  await netAgent.close();
  await noNetAgent.close();
});

async function probe(agent: TestAgent): Promise<Record<string, string>> {
  const c = await AgentClient.connect(agent.url, { token: agent.token });
  const server = http.createServer((_q, res) => res.end('probe-ok\n'));
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  try {
    const env = { PROBE_PORT: String((server.address() as AddressInfo).port) };
    const { final, out } = await runLogs(c, probeCtx, ['sh', '-c', PROBE], { env });
    assert.equal(final.exitCode, 0, out);
    return Object.fromEntries(out.split('\n').filter((l) => /^\w+[=:]/.test(l)).map((l) => {
      const i = l.search(/[=:]/);
      return [l.slice(0, i), l.slice(i + 1).trim()];
    }));
  } finally {
    c.close();
    server.close();
  }
}

test('--no-network: the container has only loopback and reaches nothing; no container sees the Docker socket or host paths', async () => {
  const off = await probe(noNetAgent);
  assert.equal(off.ifaces, 'lo,', 'only the loopback interface');
  assert.equal(off.net, 'no');
  const on = await probe(netAgent);
  assert.match(on.ifaces, /eth0/, 'with the network on there is an interface...');
  assert.equal(on.net, 'yes', '...and the probe reaches the host: so `net=no` above is the missing network, not a broken probe');

  for (const p of [off, on]) {
    assert.equal(p.socket, undefined, 'no Docker socket inside');
    const mounts = p.mounts.split(',').filter(Boolean);
    const allowed = (m: string) => m === '/' || /^\/(proc|dev|sys)(\/|$)/.test(m) || ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'].includes(m);
    assert.deepEqual(mounts.filter((m) => !allowed(m)), [], `no host path is mounted (${p.mounts})`);
    assert.notEqual(p.CapEff, '000001ffffffffff', 'not privileged');
  }
});
