// Named volumes, as a user sees them: data written in one run is there in the next and after an agent
// restart; `:ro` cannot write; a second writer waits in the queue (with the reason) and then runs; the quota
// refuses with the usage; tenants cannot see, mount or remove each other's volumes; a volume in use cannot be
// removed; fan-out runs and host paths are refused in words that say what to do.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AgentClient, AgentError } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import type { FinalEvent, RunEvent, VolumeSummary } from '../../agent/protocol';
import {
  cleanup, docker, freePort, makeContext, runCli, spawnAgent, startTestAgent, stopAgent, TestAgent, tmpDir,
} from './helpers';

const HW = { cpus: 0.5, memoryMiB: 64 };
/** A test that hangs fails (and its volumes are still removed) instead of holding up the suite. */
const T = { timeout: 180_000 };
const dirs: string[] = [];
const agentIds = new Set<string>();
const agents: TestAgent[] = [];
const clients: AgentClient[] = [];
let ctx: string;

before(() => {
  ctx = makeContext();
  dirs.push(ctx);
});

after(async () => {
  for (const c of clients) c.close();
  for (const a of agents) await a.close();
  // Only this test's volumes: those its agents made.
  for (const id of agentIds) {
    const { Volumes } = await docker.listVolumes({ filters: { label: [`io.bytenite.agent=${id}`] } });
    for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => {});
  }
  cleanup(...dirs);
});

async function agentWith(opts: Parameters<typeof startTestAgent>[0] = {}): Promise<TestAgent> {
  const agent = await startTestAgent({ hotPool: 0, ...opts });
  agents.push(agent);
  agentIds.add(agent.runs.agentId);
  dirs.push(agent.dataDir);
  return agent;
}

async function clientOf(agent: TestAgent, token = agent.token): Promise<AgentClient> {
  const c = await AgentClient.connect(agent.url, { token });
  clients.push(c);
  return c;
}

const hex = () => randomBytes(4).toString('hex');

/** Starts a run of the shared busybox image with `volumes`; `done` gives its final event, stdout and events. */
async function begin(client: AgentClient, command: string[], volumes: Array<{ name: string; path: string; readOnly?: boolean }>, more: { parallel?: number } = {}) {
  let out = '';
  let err = '';
  const events: RunEvent[] = [];
  const r = await startRun(client, {
    contextDir: ctx, dockerfile: path.join(ctx, 'Dockerfile'), hardware: HW, command, parallel: more.parallel,
    volumes: volumes.map((v) => ({ readOnly: false, ...v })),
    onEvent: (_s, e) => {
      events.push(e);
      if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
      if (e.kind === 'log' && e.stream === 'stderr') err += e.data;
    },
  });
  return { runId: r.runId, events, done: r.done.then((final: FinalEvent) => ({ final, out, err, events })) };
}

async function run(client: AgentClient, command: string[], volumes: Array<{ name: string; path: string; readOnly?: boolean }>) {
  return (await begin(client, command, volumes)).done;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a file written to a volume in one run is read in the next, and after the agent restarts; `bytenite volumes` lists it with size, use and cost', T, async () => {
  const dataDir = tmpDir('bytenite-data-');
  dirs.push(dataDir);
  const tokenFile = path.join(dataDir, 'token');
  writeFileSync(tokenFile, `${hex()}${hex()}\n`, { mode: 0o600 });
  const port = await freePort();
  let agent = await spawnAgent(dataDir, tokenFile, port);
  agentIds.add(readFileSync(path.join(dataDir, 'agent-id'), 'utf8').trim());
  const remote = (url: string) => ['--agent', url, '--token-file', tokenFile];
  const name = `keep-${hex()}`;
  try {
    const w = await runCli(['run', path.join(ctx, 'Dockerfile'), ...remote(agent.url), '-v', `${name}:/data`, '--', 'sh', '-c', 'echo kept-across-runs > /data/f && head -c 300000 /dev/zero > /data/blob']);
    assert.equal(w.code, 0, w.stderr);
    const r = await runCli(['run', path.join(ctx, 'Dockerfile'), ...remote(agent.url), '--volume', `${name}:/in:ro`, '--', 'cat', '/in/f']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'kept-across-runs\n');

    await stopAgent(agent);
    agent = await spawnAgent(dataDir, tokenFile, port);
    const again = await runCli(['run', path.join(ctx, 'Dockerfile'), ...remote(agent.url), '-v', `${name}:/data`, '--', 'cat', '/data/f']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'kept-across-runs\n', 'the volume outlived the agent');

    const listed = await runCli(['volumes', '--json', ...remote(agent.url)]);
    assert.equal(listed.code, 0, listed.stderr);
    const vols = listed.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as VolumeSummary);
    const v = vols.find((x) => x.name === name);
    assert.ok(v, listed.stdout);
    assert.ok(v.sizeBytes >= 300_000 && v.sizeBytes < 400_000, `size ${v.sizeBytes}`);
    assert.ok(v.lastUsedAt && Date.now() - Date.parse(v.lastUsedAt) < 60_000, 'last used just now, remembered across the restart');
    assert.deepEqual(v.inUse, []);
    assert.ok(Math.abs(v.monthlyCost - (v.sizeBytes / 1024 ** 3) * 0.07) < 1e-12, `cost ${v.monthlyCost}`);
    const human = await runCli(['volumes', ...remote(agent.url)]);
    assert.match(human.stdout, new RegExp(`${name}\\s+\\d+\\.\\d KiB\\s+\\$[\\d.]+/month\\s+last used 20`));
    assert.match(human.stderr, /quota; storage at \$0\.07 per GiB-month \(ByteNite default list price .*RunPod network volumes/);
  } finally {
    await stopAgent(agent);
  }
});

test('a writer the agent was killed under (SIGKILL) still holds its volume after the restart: the next writer waits for it', T, async () => {
  const dataDir = tmpDir('bytenite-data-');
  dirs.push(dataDir);
  const tokenFile = path.join(dataDir, 'token');
  const token = `${hex()}${hex()}`;
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const port = await freePort();
  let agent = await spawnAgent(dataDir, tokenFile, port);
  agentIds.add(readFileSync(path.join(dataDir, 'agent-id'), 'utf8').trim());
  const name = `kill-${hex()}`;
  try {
    const c1 = await AgentClient.connect(agent.url, { token });
    const first = await begin(c1, ['sh', '-c', 'sleep 4; echo first >> /v/log'], [{ name, path: '/v' }]);
    first.done.catch(() => {});
    await until('the first run to run', () => first.events.some((e) => e.kind === 'running'));
    agent.child.kill('SIGKILL');
    await new Promise((r) => agent.child.once('exit', r));
    c1.close();
    agent = await spawnAgent(dataDir, tokenFile, port);
    const c2 = await AgentClient.connect(agent.url, { token });
    clients.push(c2);
    const second = await begin(c2, ['sh', '-c', 'echo second >> /v/log; cat /v/log'], [{ name, path: '/v' }]);
    const b = await second.done;
    const queued = b.events.find((e) => e.kind === 'queued');
    assert.ok(queued && queued.kind === 'queued' && queued.reason === `waiting for volume ${name}: run ${first.runId} writes it (one writer at a time; :ro mounts share)`,
      JSON.stringify(b.events.slice(0, 3)));
    assert.equal(b.out, 'first\nsecond\n');
  } finally {
    await stopAgent(agent);
  }
});

test('a :ro mount refuses writes; a host path or an anonymous volume is refused before anything runs', T, async () => {
  const agent = await agentWith();
  const client = await clientOf(agent);
  assert.ok(client.hello.capabilities.includes('volumes'), 'the agent says it offers volumes');
  const name = `ro-${hex()}`;
  const w = await run(client, ['sh', '-c', 'echo x > /d/f'], [{ name, path: '/d' }]);
  assert.equal(w.final.exitCode, 0);
  const ro = await run(client, ['sh', '-c', 'echo y > /d/f'], [{ name, path: '/d', readOnly: true }]);
  assert.notEqual(ro.final.exitCode, 0);
  assert.match(ro.err, /Read-only file system/);
  const check = await run(client, ['cat', '/d/f'], [{ name, path: '/d', readOnly: true }]);
  assert.equal(check.out, 'x\n', 'the read-only run changed nothing');

  const tokenFile = path.join(agent.dataDir, 'client-token');
  writeFileSync(tokenFile, agent.token + '\n', { mode: 0o600 });
  for (const flag of ['/etc:/data', './here:/data', '/data']) {
    const r = await runCli(['run', path.join(ctx, 'Dockerfile'), '--agent', agent.url, '--token-file', tokenFile, '-v', flag]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`-v ${flag.replace('.', '\\.')}: host paths are never mounted: a run gets named volumes of its tenant on the agent`));
  }
  const anon = await runCli(['run', path.join(ctx, 'Dockerfile'), '--agent', agent.url, '--token-file', tokenFile, '-v', 'justaname']);
  assert.equal(anon.code, 2);
  assert.match(anon.stderr, /give a volume name and where to mount it/);
});

test('a second writer waits in the queue with the reason, then runs and sees the first one\'s write; :ro runs share', T, async () => {
  const agent = await agentWith();
  const client = await clientOf(agent);
  const name = `w-${hex()}`;
  const first = await begin(client, ['sh', '-c', 'sleep 2; echo first >> /v/log'], [{ name, path: '/v' }]);
  await until('the first run to run', () => first.events.some((e) => e.kind === 'running'));
  const second = await begin(client, ['sh', '-c', 'echo second >> /v/log; cat /v/log'], [{ name, path: '/v' }]);
  const a = await first.done;
  const b = await second.done;
  assert.equal(a.final.exitCode, 0);
  assert.equal(b.final.exitCode, 0);
  const queued = b.events.find((e) => e.kind === 'queued');
  assert.ok(queued && queued.kind === 'queued', JSON.stringify(b.events.slice(0, 4)));
  assert.equal(queued.reason, `waiting for volume ${name}: run ${first.runId} writes it (one writer at a time; :ro mounts share)`);
  assert.equal(b.out, 'first\nsecond\n', 'the second writer ran after the first had ended');

  // Two readers at once: both are running before either ends.
  const r1 = await begin(client, ['sh', '-c', 'sleep 2; cat /v/log'], [{ name, path: '/v', readOnly: true }]);
  const r2 = await begin(client, ['sh', '-c', 'sleep 2; cat /v/log'], [{ name, path: '/v', readOnly: true }]);
  await until('both readers to run', () => r1.events.some((e) => e.kind === 'running') && r2.events.some((e) => e.kind === 'running'));
  const listed = await client.volumes();
  assert.deepEqual(listed.volumes.find((v) => v.name === name)?.inUse.map((u) => u.runId).sort(), [r1.runId, r2.runId].sort());
  assert.ok(!r1.events.some((e) => e.kind === 'queued') && !r2.events.some((e) => e.kind === 'queued'), 'neither reader waited');
  assert.equal((await r1.done).out, 'first\nsecond\n');
  assert.equal((await r2.done).out, 'first\nsecond\n');
});

test('a fan-out run with a read-write volume is refused, saying to mount it :ro; with :ro its tasks all read it', T, async () => {
  const agent = await agentWith();
  const client = await clientOf(agent);
  const name = `fan-${hex()}`;
  assert.equal((await run(client, ['sh', '-c', 'echo shared > /s/f'], [{ name, path: '/s' }])).final.exitCode, 0);
  await assert.rejects(begin(client, ['cat', '/s/f'], [{ name, path: '/s' }], { parallel: 2 }), (err: AgentError) => {
    assert.equal(err.code, 'volume_refused');
    assert.equal(err.message, `a fan-out run (--parallel 2) cannot mount volume ${name} read-write: its tasks would all write it at once. ` +
      `Mount it read-only (-v ${name}:/s:ro), or write from a run of one task`);
    return true;
  });
  const ro = await (await begin(client, ['cat', '/s/f'], [{ name, path: '/s', readOnly: true }], { parallel: 2 })).done;
  assert.equal(ro.final.exitCode, 0);
  assert.equal(ro.out, 'shared\nshared\n');
});

test('over the quota: the run that crosses it is told in its events, the next writer is refused with the usage; :ro still runs', T, async () => {
  const agent = await agentWith({ volumeQuotaBytes: 1024 * 1024, volumeCheckMs: 200 });
  const client = await clientOf(agent);
  const name = `q-${hex()}`;
  const big = await run(client, ['sh', '-c', 'head -c 2097152 /dev/zero > /q/big; sleep 1'], [{ name, path: '/q' }]);
  assert.equal(big.final.exitCode, 0, 'the run that crossed goes on to its end');
  const told = big.events.filter((e) => e.kind === 'volume');
  assert.equal(told.length, 1, JSON.stringify(told));
  assert.ok(told[0].kind === 'volume' && told[0].usedBytes >= 2097152 && told[0].quotaBytes === 1024 * 1024);
  assert.match((told[0] as { message: string }).message, /now hold 2\.0 MiB, over their quota of 1\.0 MiB: this run goes on, but the next run that writes a volume is refused/);

  await assert.rejects(begin(client, ['true'], [{ name: `other-${hex()}`, path: '/o' }]), (err: AgentError) => {
    assert.equal(err.code, 'over_quota');
    assert.match(err.message, /^the volumes of this tenant hold 2\.0 MiB, over their quota of 1\.0 MiB \(bytenite agent --volume-quota\): remove one/);
    return true;
  });
  const reader = await run(client, ['sh', '-c', 'wc -c < /q/big'], [{ name, path: '/q', readOnly: true }]);
  assert.equal(reader.out.trim(), '2097152');

  // Through the CLI, as a user meets it: exit 125 and the usage.
  const tokenFile = path.join(agent.dataDir, 'client-token');
  writeFileSync(tokenFile, agent.token + '\n', { mode: 0o600 });
  const cli = await runCli(['run', path.join(ctx, 'Dockerfile'), '--agent', agent.url, '--token-file', tokenFile, '-v', `${name}:/q`, '--', 'true']);
  assert.equal(cli.code, 125);
  assert.match(cli.stderr, /hold 2\.0 MiB, over their quota of 1\.0 MiB/);
  await client.removeVolume(name);
  assert.equal((await run(client, ['true'], [{ name, path: '/q' }])).final.exitCode, 0, 'back under quota once the volume is removed');
});

test('a writer already waiting when the one ahead crosses the quota fails with the usage instead of starting', T, async () => {
  const agent = await agentWith({ volumeQuotaBytes: 1024 * 1024, volumeCheckMs: 200 });
  const client = await clientOf(agent);
  const name = `q2-${hex()}`;
  const first = await begin(client, ['sh', '-c', 'sleep 1; head -c 2097152 /dev/zero > /q/big'], [{ name, path: '/q' }]);
  await until('the first run to run', () => first.events.some((e) => e.kind === 'running'));
  const second = await begin(client, ['sh', '-c', 'echo never'], [{ name, path: '/q' }]);
  assert.equal((await first.done).final.exitCode, 0);
  const b = await second.done;
  assert.ok(b.events.some((e) => e.kind === 'queued' && e.reason?.includes(`run ${first.runId} writes it`)));
  assert.equal(b.final.kind, 'failed');
  assert.ok(b.final.kind === 'failed' && b.final.code === 'volume');
  assert.match((b.final as { message: string }).message, /^the volumes of this tenant hold 2\.0 MiB, over their quota of 1\.0 MiB/);
  assert.equal(b.out, '', 'it never ran');
});

test('tenants cannot list, mount or remove each other\'s volumes: the same "not found" as a missing one', T, async () => {
  const alice = `alice-${hex()}`;
  const bob = `bob-${hex()}`;
  const agent = await agentWith({ tokens: new Map([[alice, 'alice'], [bob, 'bob']]) });
  const a = await clientOf(agent, alice);
  const b = await clientOf(agent, bob);
  const name = `private-${hex()}`;
  assert.equal((await run(a, ['sh', '-c', 'echo alice-only > /p/secret'], [{ name, path: '/p' }])).final.exitCode, 0);

  assert.ok((await a.volumes()).volumes.some((v) => v.name === name));
  assert.ok(!(await b.volumes()).volumes.some((v) => v.name === name), 'bob does not see it');
  const missing = `never-${hex()}`;
  const rmErr = async (c: AgentClient, n: string) => c.removeVolume(n).then(() => undefined, (e: AgentError) => ({ code: e.code, message: e.message.replace(n, 'NAME') }));
  const theirs = await rmErr(b, name);
  assert.deepEqual(theirs, { code: 'not_found', message: 'no volume NAME on this agent (bytenite volumes lists them)' });
  assert.deepEqual(theirs, await rmErr(b, missing), 'another tenant\'s volume is as missing as one that never was');

  // Bob's mount of that name is a volume of his own, empty: alice's file is not there.
  const peek = await run(b, ['sh', '-c', 'ls -A /p; cat /p/secret'], [{ name, path: '/p' }]);
  assert.notEqual(peek.final.exitCode, 0);
  assert.equal(peek.out, '');
  assert.match(peek.err, /No such file/);
  // Alice's is untouched.
  assert.equal((await run(a, ['cat', '/p/secret'], [{ name, path: '/p', readOnly: true }])).out, 'alice-only\n');
  await b.removeVolume(name); // bob's own
  assert.equal((await run(a, ['cat', '/p/secret'], [{ name, path: '/p', readOnly: true }])).out, 'alice-only\n', 'bob removing his removed nothing of alice\'s');
});

test('a volume in use cannot be removed (the reply names the run); once the run ends it can, and is gone', T, async () => {
  const agent = await agentWith();
  const client = await clientOf(agent);
  const name = `busy-${hex()}`;
  const long = await begin(client, ['sleep', '30'], [{ name, path: '/b' }]);
  await until('the run to run', () => long.events.some((e) => e.kind === 'running'));
  // Its container is limited as every run's is, and mounts the named volume, no host path.
  const [c] = await docker.listContainers({ filters: { label: [`io.bytenite.run=${long.runId}`] } });
  const info = await docker.getContainer(c.Id).inspect();
  assert.equal(info.HostConfig.Memory, 64 * 1024 * 1024);
  assert.equal(info.HostConfig.NanoCpus, 0.5e9);
  assert.ok((info.HostConfig.PidsLimit ?? 0) > 0);
  assert.equal(info.HostConfig.Privileged, false);
  assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges']);
  assert.deepEqual(info.HostConfig.Binds ?? [], []);
  assert.deepEqual(info.Mounts.map((m) => ({ type: m.Type, rw: m.RW, dest: m.Destination, named: /^bytenite-vol-[a-f0-9]{32}$/.test(m.Name ?? '') })),
    [{ type: 'volume', rw: true, dest: '/b', named: true }]);
  await assert.rejects(client.removeVolume(name), (err: AgentError) => {
    assert.equal(err.code, 'volume_in_use');
    assert.equal(err.message, `volume ${name} is in use by run ${long.runId}: remove it once that run has ended (or cancel the run first)`);
    return true;
  });
  const tokenFile = path.join(agent.dataDir, 'client-token');
  writeFileSync(tokenFile, agent.token + '\n', { mode: 0o600 });
  const cli = await runCli(['volume', 'rm', name, '--agent', agent.url, '--token-file', tokenFile]);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, new RegExp(`in use by run ${long.runId}`));
  await client.cancel(long.runId);
  assert.equal((await long.done).final.kind, 'cancelled');
  const ok = await runCli(['volume', 'rm', name, '--agent', agent.url, '--token-file', tokenFile]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(!(await client.volumes()).volumes.some((v) => v.name === name));
});

test('LABEL bytenite.volume=NAME:/path mounts like -v; a flag for the same path replaces it', T, async () => {
  const agent = await agentWith();
  const tokenFile = path.join(agent.dataDir, 'client-token');
  writeFileSync(tokenFile, agent.token + '\n', { mode: 0o600 });
  const name = `lab-${hex()}`;
  const labelled = makeContext({}, `LABEL bytenite.volume=${name}:/lab\nCMD ["sh", "-c", "echo x >> /lab/n; wc -l < /lab/n"]\n`, { uniq: true });
  dirs.push(labelled);
  const remote = ['--agent', agent.url, '--token-file', tokenFile];
  const one = await runCli(['run', path.join(labelled, 'Dockerfile'), ...remote]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, '1\n');
  const two = await runCli(['run', path.join(labelled, 'Dockerfile'), ...remote]);
  assert.equal(two.stdout, '2\n', 'the label\'s volume kept the count');
  const other = `lab2-${hex()}`;
  const flag = await runCli(['run', path.join(labelled, 'Dockerfile'), ...remote, '-v', `${other}:/lab`]);
  assert.equal(flag.stdout, '1\n', 'the flag\'s volume (a fresh one) replaced the label\'s at /lab');
});
