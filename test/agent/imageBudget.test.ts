// Images within a budget: an agent with a small --image-budget keeps the images of the contexts run most
// recently, and the one a live run uses; the oldest context's next run is cold and says why (also after a
// restart, and in the CLI); images the agent did not make are never removed. Real agent, real Docker Engine.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import * as tar from 'tar';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { LABELS } from '../../agent/engine/engine';
import type { FinalEvent, RunEvent } from '../../agent/protocol';
import { startAgent } from '../../agent/server';
import { createLogger } from '../../agent/log';
import { cleanup, docker, makeContext, runCli, startTestAgent, tmpDir } from './helpers';

const MiB = 1024 * 1024;
const HW = { cpus: 0.5, memoryMiB: 64 };
const BUDGET = 10 * MiB;
const dirs: string[] = [];
const madeImages: string[] = [];
after(async () => {
  for (const id of madeImages) await docker.getImage(id).remove().catch(() => {});
  cleanup(...dirs);
});

type Starting = Extract<RunEvent, { kind: 'starting' }>;

async function run(client: AgentClient, dir: string, opts: { command?: string[]; onRunning?: () => void } = {}) {
  let starting: Starting | undefined;
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command: opts.command,
    onEvent: (_s, e) => {
      if (e.kind === 'starting') starting = e;
      if (e.kind === 'running') opts.onRunning?.();
    },
  });
  const done = r.done.then((final: FinalEvent) => ({ final, starting: starting! }));
  done.catch(() => {}); // awaited by the test; a run left when the test fails ends with its connection
  return { runId: r.runId, done };
}

/** An image built here, not by the agent: FROM scratch and a 3 MiB file, with the given labels. */
async function buildForeign(tag: string, labels: Record<string, string>): Promise<string> {
  const dir = tmpDir('bytenite-foreign-');
  dirs.push(dir);
  writeFileSync(path.join(dir, 'big.bin'), randomBytes(3 * MiB));
  writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
  await tar.c({ cwd: dir, file: path.join(dir, 'ctx.tar') }, ['Dockerfile', 'big.bin']);
  const stream = await docker.buildImage(path.join(dir, 'ctx.tar'), { t: tag, labels, version: '1' } as Docker.ImageBuildOptions);
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve(undefined))));
  const id = (await docker.getImage(tag).inspect()).Id;
  madeImages.push(id);
  return id;
}

async function agentImages(agentId: string): Promise<Set<string>> {
  const list = await docker.listImages({ filters: { label: [`${LABELS.agent}=${agentId}`] } });
  return new Set(list.map((i) => i.Id));
}

test('with a small image budget, the newest images and a live run\'s stay; the oldest context\'s next run is cold and says why', async () => {
  const contexts = Array.from({ length: 8 }, (_, i) => {
    const dir = makeContext({}, `COPY big.bin /big.bin\nCMD ["echo", "context ${i}"]\n`);
    writeFileSync(path.join(dir, 'big.bin'), randomBytes(3 * MiB)); // distinct: no layer shared with another context
    dirs.push(dir);
    return dir;
  });
  const plain = await buildForeign(`bytenite-test-foreign:${randomBytes(4).toString('hex')}`, {});
  // Looks like another agent's image on the same engine: ByteNite's labels, another agent's id.
  const otherAgents = await buildForeign(`bytenite-ctx:test${randomBytes(4).toString('hex')}`, {
    [LABELS.managed]: '1', [LABELS.digest]: randomBytes(16).toString('hex'), [LABELS.agent]: 'a-someoneelse',
  });

  const budgets = { hotPool: 0, imageBudgetBytes: BUDGET, buildCacheBudgetBytes: 100 * 1024 ** 3 };
  const agent = await startTestAgent(budgets);
  dirs.push(agent.dataDir);
  const agentId = agent.runs.agentId;
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const imageOf: string[] = [];
  let afterRestart: AgentClient | undefined;
  let restarted: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    const first = await (await run(client, contexts[0])).done;
    assert.equal(first.final.kind, 'exited', JSON.stringify(first.final));
    imageOf[0] = first.starting.image;
    // Context 1 keeps running while the others are built: its image is needed, though older.
    let live!: () => void;
    const isLive = new Promise<void>((r) => (live = r));
    const long = await run(client, contexts[1], { command: ['sleep', '300'], onRunning: () => live() });
    await isLive;
    for (let i = 2; i < 8; i++) {
      const r = await (await run(client, contexts[i])).done;
      assert.equal(r.final.kind, 'exited', JSON.stringify(r.final));
      assert.equal(r.starting.start, 'cold');
      assert.equal(r.starting.reason, undefined, 'a context never built before is cold without a reason');
      imageOf[i] = r.starting.image;
    }
    const usage = await agent.images!.collect();
    const present = await agentImages(agentId);
    const live1 = (await docker.listContainers({ filters: { label: [`${LABELS.run}=${long.runId}`] } }))[0];
    imageOf[1] = live1.ImageID;
    const kept = imageOf.map((id) => present.has(id));
    // Context 1 is needed (3 MiB), 7 and 6 are the newest and fit the 7 MiB left; 5 would not.
    assert.deepEqual(kept, [false, true, false, false, false, false, true, true], `kept per context: ${kept}`);
    assert.ok(usage.imageBytes <= BUDGET && usage.imageBytes >= 9 * MiB, `images ${usage.imageBytes} bytes, budget ${BUDGET}`);
    assert.equal(usage.imageBudgetBytes, BUDGET);
    // Never an image the agent did not make, whatever it is labelled.
    await docker.getImage(plain).inspect();
    await docker.getImage(otherAgents).inspect();
    // Another agent on the same engine, with no room at all, removes none of this one's.
    const other = await startTestAgent({ hotPool: 0, imageBudgetBytes: 0, buildCacheBudgetBytes: 0 });
    dirs.push(other.dataDir);
    await other.images!.collect();
    await other.close();
    assert.deepEqual(await agentImages(agentId), present);
    // An image someone has tagged is theirs now: context 6's stays when it falls beyond the budget below.
    const adopted = `bytenite-test-adopted:${randomBytes(4).toString('hex')}`;
    await docker.getImage(imageOf[6]).tag({ repo: adopted.split(':')[0], tag: adopted.split(':')[1] });
    madeImages.unshift(adopted);

    await client.cancel(long.runId);
    await (await long).done;
    // A kept image starts warm.
    assert.equal((await (await run(client, contexts[7])).done).starting.start, 'warm');

    // The agent remembers what it removed across a restart.
    client.close();
    await agent.close();
    restarted = await startAgent({
      host: '127.0.0.1', port: 0, token: agent.token, dataDir: agent.dataDir, log: createLogger('silent'), stopGraceSeconds: 2, ...budgets,
    });
    assert.equal(restarted.runs.agentId, agentId);
    afterRestart = await AgentClient.connect(restarted.url, { token: agent.token });
    const again = await (await run(afterRestart, contexts[0])).done;
    assert.equal(again.final.kind, 'exited');
    assert.equal(again.starting.start, 'cold');
    assert.match(again.starting.reason ?? '', /^cold: its image was removed on \d{4}-\d\d-\d\d \d\d:\d\d UTC to stay within the image budget \(10\.0 MiB; bytenite agent --image-budget SIZE\)$/);

    // The CLI says it too.
    const tokenFile = path.join(agent.dataDir, 'cli-token');
    writeFileSync(tokenFile, agent.token + '\n', { mode: 0o600 });
    const cli = await runCli(['run', path.join(contexts[2], 'Dockerfile'), '--cpus', '0.5', '--memory', '64m', '--agent', restarted.url, '--token-file', tokenFile]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, 'context 2\n');
    assert.match(cli.stderr, /cold start: built \d+ steps, \d+ from cache(?: by [^;]+)?; its image was removed on .* to stay within the image budget \(10\.0 MiB; bytenite agent --image-budget SIZE\)/);
    // Now 2, 0 and 7 are the most recently used; 1, no longer running, is beyond the budget.
    await restarted.images!.collect();
    const now = await agentImages(agentId);
    assert.equal(now.has(imageOf[1]), false, 'the image of the run that ended, least recently used, is removed');
    assert.equal(now.has(imageOf[7]), true);
    await docker.getImage(imageOf[6]).inspect();
    await docker.getImage(plain).inspect();
    await docker.getImage(otherAgents).inspect();
  } finally {
    afterRestart?.close();
    client.close();
    if (restarted) await restarted.close();
    else await agent.close();
    for (const id of await agentImages(agentId)) madeImages.push(id);
  }
});

test('the step images failed builds leave are kept within the build-cache budget, newest first; others\' are not touched', async () => {
  // COPY makes a 3 MiB step image; the RUN after it fails: the step image is left, untagged, as cache.
  const failing = () => {
    const dir = makeContext({}, 'COPY big.bin /big.bin\nRUN exit 3\n');
    writeFileSync(path.join(dir, 'big.bin'), randomBytes(3 * MiB));
    dirs.push(dir);
    return dir;
  };
  const contexts = [failing(), failing()];
  // The same kind of leftover, from a build the agent did not run.
  const foreignDir = tmpDir('bytenite-foreign-');
  dirs.push(foreignDir);
  writeFileSync(path.join(foreignDir, 'big.bin'), randomBytes(3 * MiB));
  writeFileSync(path.join(foreignDir, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\nRUN ["/nothing"]\n');
  await tar.c({ cwd: foreignDir, file: path.join(foreignDir, 'ctx.tar') }, ['Dockerfile', 'big.bin']);
  const stream = await docker.buildImage(path.join(foreignDir, 'ctx.tar'), { forcerm: true, version: '1' } as Docker.ImageBuildOptions);
  let foreignStep = '';
  await new Promise((resolve) => docker.modem.followProgress(stream, () => resolve(undefined), (e: { stream?: string }) => {
    const m = / ---> ([0-9a-f]{12})$/.exec(e.stream?.trim() ? ` ${e.stream.trim()}` : '');
    if (m) foreignStep = m[1];
  }));
  assert.ok(foreignStep, 'the foreign build left a step image');
  madeImages.push(foreignStep);

  // The legacy builder's step images are its build cache; BuildKit keeps its own, pruned through the engine.
  const agent = await startTestAgent({ builder: 'legacy', hotPool: 0, imageBudgetBytes: 100 * 1024 ** 3, buildCacheBudgetBytes: 4 * MiB });
  dirs.push(agent.dataDir);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  const steps: string[] = [];
  try {
    // The base steps built once, kept as a run's image: the failed builds reuse them from the cache, so
    // what each leaves of its own is the 3 MiB file (the engine counts layers another image holds as shared).
    const baseDir = makeContext({}, '', { uniq: true }); // built here, by this builder, not found ready-made
    dirs.push(baseDir);
    const base = await (await run(client, baseDir, { command: ['true'] })).done;
    assert.equal(base.final.kind, 'exited', JSON.stringify(base.final));
    for (const dir of contexts) {
      const r = await (await run(client, dir)).done;
      assert.equal(r.final.kind, 'failed');
      assert.equal((r.final as Extract<FinalEvent, { kind: 'failed' }>).code, 'build');
      // The step image the build left: untagged, holding the 3 MiB file, one the agent's record says its build made.
      const made = JSON.parse(readFileSync(path.join(agent.dataDir, 'images.json'), 'utf8')).made as Record<string, number>;
      const left = (await docker.listImages()).filter((i) => (i.RepoTags ?? []).every((t) => t === '<none>:<none>') && i.Size > 3 * MiB
        && made[i.Id.slice(7, 19)] !== undefined && !steps.includes(i.Id));
      assert.equal(left.length, 1, `one step image left by the failed build: ${JSON.stringify(left)}`);
      steps.push(left[0].Id);
    }
    const usage = await agent.images!.collect();
    const ids = new Set((await docker.listImages({ all: true })).map((i) => i.Id));
    assert.ok(usage.buildCacheBytes <= 4 * MiB && usage.buildCacheBytes >= 3 * MiB, `build cache ${usage.buildCacheBytes} bytes`);
    assert.equal(ids.has(steps[1]), true, 'the newest failed build\'s step image stays');
    assert.equal(ids.has(steps[0]), false, 'the older one, beyond the budget, is removed');
    await docker.getImage(foreignStep).inspect();
  } finally {
    client.close();
    await agent.close();
    for (const id of steps) if (id) madeImages.push(id);
  }
});
