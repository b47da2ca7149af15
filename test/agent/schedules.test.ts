// Schedules on a real agent and engine: a seconds-field schedule fires twice in about 12 s, as ordinary runs
// named after it; a long job with overlap skip records the skipped time; another tenant neither sees nor
// removes it; and a real agent process, SIGKILLed and started again after a downtime, catches up once
// (one run standing for the missed times) and keeps firing. The CLI adds and lists it as a user would.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { cleanup, freePort, makeContext, runCli, spawnAgent, startTestAgent, stopAgent, tmpDir, type TestAgent } from './helpers';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import type { ScheduleSummary } from '../../agent/protocol';

const dirs: string[] = [];
const agents: TestAgent[] = [];
after(async () => {
  for (const a of agents) await a.close();
  cleanup(...dirs);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls the tenant's schedule NAME until `done` holds (or fails with what it last saw). */
async function until(client: AgentClient, name: string, done: (s: ScheduleSummary) => boolean, timeoutMs = 30_000): Promise<ScheduleSummary> {
  const deadline = Date.now() + timeoutMs;
  let last: ScheduleSummary | undefined;
  while (Date.now() < deadline) {
    last = (await client.schedules()).find((s) => s.name === name);
    if (last && done(last)) return last;
    await sleep(250);
  }
  throw new Error(`timed out; last seen: ${JSON.stringify(last)}`);
}

async function build(client: AgentClient, dir: string, command?: string[]) {
  const started = await startRun(client, { contextDir: dir, dockerfile: `${dir}/Dockerfile`, hardware: { cpus: 0.5, memoryMiB: 128 }, buildOnly: true, command, onEvent: () => {} });
  const final = await started.done;
  assert.equal(final.kind, 'exited', JSON.stringify(final));
  return started.spec;
}

test('a */5 s schedule fires twice in about 12 s as runs named after it; run now; another tenant cannot see or remove it', async () => {
  const ctx = makeContext({}, 'CMD ["/bin/busybox", "echo", "tick"]\n', { uniq: true });
  dirs.push(ctx);
  const other = 'f'.repeat(32);
  const first = await startTestAgent({});
  await first.close();
  const agent = await startTestAgent({ dataDir: first.dataDir, tokens: new Map([[first.token, 'default'], [other, 'other']]) });
  agents.push(agent);
  const client = await AgentClient.connect(agent.url, { token: first.token });
  const spec = await build(client, ctx);
  const added = await client.addSchedule('tick', spec, { cron: '*/5 * * * * *', timezone: 'UTC' });
  assert.equal(added.next.length, 3);
  assert.deepEqual(added.next.slice(1).map((t, i) => Date.parse(t) - Date.parse(added.next[i])), [5000, 5000]);
  assert.equal(added.settings.overlap, 'skip');
  assert.equal(added.settings.catchUp, 'once');

  const t0 = Date.now();
  const fired = await until(client, 'tick', (s) => s.recent.filter((f) => f.result === 'exited').length >= 2, 20_000);
  const took = Date.now() - t0;
  assert.ok(took <= 16_000, `two firings took ${took} ms`);
  const done = fired.recent.filter((f) => f.result === 'exited');
  assert.ok(done.every((f) => f.exitCode === 0 && f.trigger === 'cron' && f.runId && (f.cost ?? 0) > 0), JSON.stringify(done));
  assert.equal(Date.parse(done[0].time) % 5000, 0, 'fired at a */5 second');
  assert.ok(fired.cost > 0 && fired.runs >= 2);
  // Ordinary runs: in the run list with the schedule's name, their logs in the journal.
  const runs = await client.list();
  const named = runs.filter((r) => r.name === 'schedule tick');
  assert.ok(named.length >= 2, JSON.stringify(runs.map((r) => r.name)));
  assert.ok(named.some((r) => r.runId === done[0].runId && r.final?.kind === 'exited'));

  const manual = await client.scheduleAction('run', 'tick');
  assert.equal(manual.last?.trigger, 'manual');
  assert.ok(manual.last?.runId);

  const paused = await client.scheduleAction('pause', 'tick');
  assert.equal(paused.paused, true);
  assert.deepEqual(paused.next, []);
  const resumed = await client.scheduleAction('resume', 'tick');
  assert.equal(resumed.next.length, 3);

  // Another tenant: nothing listed, and removing it reads exactly as removing one that does not exist.
  const stranger = await AgentClient.connect(agent.url, { token: other });
  assert.deepEqual(await stranger.schedules(), []);
  const theirs = await stranger.removeSchedule('tick').then(() => 'removed', (e: Error) => e.message);
  const none = await stranger.removeSchedule('nothing-here').then(() => 'removed', (e: Error) => e.message);
  assert.equal(theirs, 'no schedule tick on this agent');
  assert.equal(none.replace('nothing-here', 'tick'), theirs);
  assert.equal((await client.schedules()).length, 1, 'still there for its tenant');
  stranger.close();

  await client.removeSchedule('tick');
  assert.deepEqual(await client.schedules(), []);
  client.close();
});

test('overlap skip: a time that finds the last run still going is recorded as skipped, naming that run', async () => {
  const ctx = makeContext({}, '', { uniq: true });
  dirs.push(ctx);
  const agent = await startTestAgent({});
  agents.push(agent);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const spec = await build(client, ctx, ['/bin/busybox', 'sleep', '7']);
  await client.addSchedule('slow', spec, { cron: '*/3 * * * * *', timezone: 'UTC', overlap: 'skip' });
  const s = await until(client, 'slow', (x) => x.skipped >= 1, 25_000);
  const skipped = s.recent.find((f) => f.result === 'skipped')!;
  const running = s.recent.find((f) => f.result === 'running')!;
  assert.ok(running?.runId, JSON.stringify(s.recent));
  assert.match(skipped.reason!, new RegExp(`${running.runId} was still running \\(--overlap skip\\)`));
  assert.equal(s.runs, 1, 'no second run while the first goes on');
  await client.removeSchedule('slow');
  const run = (await client.list()).find((r) => r.runId === running.runId)!;
  await client.cancel(run.runId);
  client.close();
});

test('overlap queue: one time waits for the running job and starts when it ends; a second one skips', async () => {
  const ctx = makeContext({}, '', { uniq: true });
  dirs.push(ctx);
  const agent = await startTestAgent({});
  agents.push(agent);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const spec = await build(client, ctx, ['/bin/busybox', 'sleep', '7']);
  await client.addSchedule('queued', spec, { cron: '*/3 * * * * *', timezone: 'UTC', overlap: 'queue' });
  const s = await until(client, 'queued', (x) => x.runs >= 2 && x.skipped >= 1, 30_000);
  await client.removeSchedule('queued');
  const started = s.recent.filter((f) => f.runId).reverse();
  assert.match(s.recent.find((f) => f.result === 'skipped')!.reason!, /a firing already waits for r-\w+ to end \(--overlap queue keeps one\)/);
  const runs = await client.list();
  const [a, b] = started.map((f) => runs.find((r) => r.runId === f.runId)!);
  assert.equal(a.final?.kind, 'exited', 'the first had ended when the queued one started');
  assert.ok(Date.parse(b.createdAt) - Date.parse(a.createdAt) >= 7000, `${a.createdAt} then ${b.createdAt}`);
  for (const r of await client.list()) if (!r.final) await client.cancel(r.runId);
  client.close();
});

test('CLI add and list; agent SIGKILLed: after a downtime spanning missed times it catches up once, then keeps firing', async () => {
  const ctx = makeContext({}, 'CMD ["/bin/busybox", "echo", "beat"]\n', { uniq: true });
  const dataDir = tmpDir('bytenite-sched-data-');
  dirs.push(ctx, dataDir);
  const token = 'd'.repeat(32);
  const tokenFile = `${dataDir}/token`;
  writeFileSync(tokenFile, token + '\n');
  const port = await freePort();
  let proc = await spawnAgent(dataDir, tokenFile, port);
  try {
    const flags = ['--agent', proc.url, '--token-file', tokenFile];
    const add = await runCli(['schedule', 'add', 'beat', '--cron', '*/5 * * * * *', '--timezone', 'UTC', '--cpus', '0.5', '--memory', '128m', ...flags, `${ctx}/Dockerfile`]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stderr, /schedule beat added \(overlap skip, catch-up once\)/);
    const listed = await runCli(['schedules', ...flags]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^beat\s+active {2}"\*\/5 \* \* \* \* \*" UTC/m);
    assert.match(listed.stdout, /next {2}\S+ \S+ \S+ \(\S+T\S+Z\), /, 'local time, then UTC');

    let client = await AgentClient.connect(proc.url, { token });
    await until(client, 'beat', (s) => s.recent.some((f) => f.result === 'exited'), 20_000);
    client.close();
    proc.child.kill('SIGKILL');
    await new Promise((r) => proc.child.once('exit', r));
    const downAt = Date.now();
    await sleep(12_000);
    proc = await spawnAgent(dataDir, tokenFile, port);
    const upAt = Date.now();
    client = await AgentClient.connect(proc.url, { token });
    const caught = await until(client, 'beat', (s) => s.recent.some((f) => f.trigger === 'catch-up' && f.result === 'exited'), 20_000);
    const catchUps = caught.recent.filter((f) => f.trigger === 'catch-up');
    assert.equal(catchUps.length, 1, `one catch-up run: ${JSON.stringify(catchUps)}`);
    const missed = catchUps[0].standsFor ?? [catchUps[0].time];
    assert.ok(missed.length >= 2, `the downtime spanned at least two times: ${JSON.stringify(missed)}`);
    assert.ok(missed.every((t) => Date.parse(t) >= downAt - 5000 && Date.parse(t) <= upAt), JSON.stringify({ missed, downAt, upAt }));
    // And it keeps firing at its times after the restart.
    const later = await until(client, 'beat', (s) => s.recent.some((f) => f.trigger === 'cron' && f.result === 'exited' && Date.parse(f.time) > upAt), 20_000);
    assert.ok(later.runs >= 3);
    const runs = await runCli(['runs', ...flags]);
    assert.match(runs.stdout, /schedule beat/);
    const rm = await runCli(['schedule', 'rm', 'beat', ...flags]);
    assert.equal(rm.code, 0, rm.stderr);
    client.close();
  } finally {
    await stopAgent(proc);
  }
});
