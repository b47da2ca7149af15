// Run networks left by killed agents fill Docker's address pools (about thirty networks by default): then
// every new network fails, and with it every run. The agent frees the idle ones and makes its own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import type { RunEvent } from '../../agent/protocol';
import { cleanup, docker, makeContext, startTestAgent } from './helpers';

const made: string[] = [];
const dirs: string[] = [];
after(async () => {
  for (const n of made) await docker.getNetwork(n).remove().catch(() => {});
  cleanup(...dirs);
});

test('with the address pools used up by idle run networks of agents long gone, a run still starts', async () => {
  // Leftovers as a SIGKILLed agent leaves them: labelled as the agent labels its run networks, no container on them.
  for (let i = 0; i < 64; i++) {
    const name = `bytenite-a-gone0${i}-leftover`;
    try {
      await docker.createNetwork({ Name: name, Driver: 'bridge', Labels: { 'io.bytenite.managed': '1', 'io.bytenite.agent': `a-gone0${i}` } });
      made.push(name);
    } catch (err) {
      assert.match((err as Error).message, /address pool/, 'the only way to stop making networks is to run out of addresses');
      break;
    }
  }
  assert.ok(made.length >= 1 && made.length < 64, `the pools filled after ${made.length} networks`);
  const agent = await startTestAgent();
  dirs.push(agent.dataDir);
  const ctx = makeContext({}, 'CMD ["echo", "on a network of its own"]\n', { uniq: true });
  dirs.push(ctx);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  try {
    let out = '';
    const r = await startRun(Promise.resolve(client), {
      contextDir: ctx, dockerfile: path.join(ctx, 'Dockerfile'), hardware: { cpus: 0.5, memoryMiB: 64 },
      onEvent: (_s, e: RunEvent) => { if (e.kind === 'log' && e.stream === 'stdout') out += e.data; },
    });
    const final = await r.done;
    assert.equal(final.kind === 'exited' && final.exitCode, 0, JSON.stringify(final));
    assert.equal(out, 'on a network of its own\n');
    const left = (await docker.listNetworks()).filter((n) => made.includes(n.Name)).length;
    assert.ok(left < made.length, `idle leftovers were removed (${made.length - left} of ${made.length})`);
  } finally {
    client.close();
    await agent.close();
  }
});
