// The wire schema: what it accepts, what it refuses and how it says so, and that its document is current.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AGENT_VERSION, AgentMessage, parseClientMessage, RunEvent } from '../../agent/protocol';
import { renderProtocolDoc } from '../../agent/protocol/doc';

const ROOT = path.join(__dirname, '..', '..');
const spec = { dockerfile: 'Dockerfile', contextDigest: 'f'.repeat(64), contextBytes: 10, hardware: { cpus: 1, memoryMiB: 512 } };

test('docs/protocol.md is generated from the schema (run `npm run docs:protocol` after changing it)', () => {
  assert.equal(readFileSync(path.join(ROOT, 'docs', 'protocol.md'), 'utf8'), renderProtocolDoc());
});

test('the agent version is the package version', () => {
  assert.equal(AGENT_VERSION, JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
});

test('a valid run.create parses, with defaults filled in', () => {
  const r = parseClientMessage(JSON.stringify({ type: 'run.create', id: '1', spec }));
  assert.ok(r.ok);
  assert.ok(r.message.type === 'run.create');
  assert.deepEqual(r.message.spec.env, {});
  assert.deepEqual(r.message.spec.secretEnv, []);
});

test('invalid messages are refused with the path of every bad field and the request id', () => {
  const r = parseClientMessage(JSON.stringify({ type: 'run.create', id: 'req-7', spec: { ...spec, hardware: { cpus: 0, memoryMiB: 'lots' }, env: { '1BAD': 'x' } } }));
  assert.ok(!r.ok);
  assert.equal(r.code, 'bad_message');
  assert.equal(r.inReplyTo, 'req-7');
  assert.match(r.message, /spec\.hardware\.cpus/);
  assert.match(r.message, /spec\.hardware\.memoryMiB/);
  assert.match(r.message, /spec\.env/);
});

test('unknown types, extra fields, bad JSON and oversized frames each get their own code', () => {
  const unknown = parseClientMessage('{"type":"nope","id":"1"}');
  assert.ok(!unknown.ok && unknown.code === 'bad_message');
  const extra = parseClientMessage('{"type":"run.list","id":"1","x":1}');
  assert.ok(!extra.ok && /x/.test(extra.message));
  const json = parseClientMessage('{"type":');
  assert.ok(!json.ok && json.code === 'bad_json' && json.inReplyTo === undefined);
  const big = parseClientMessage(' '.repeat(1024 * 1024 + 1));
  assert.ok(!big.ok && big.code === 'too_large');
});

test('run ids and digests must have their shape', () => {
  assert.ok(!parseClientMessage('{"type":"run.cancel","id":"1","runId":"../../etc"}').ok);
  assert.ok(!parseClientMessage(JSON.stringify({ type: 'run.create', id: '1', spec: { ...spec, contextDigest: 'xyz' } })).ok);
});

test('every final event carries exit code, OOM flag, duration, cost, start kind and phases', () => {
  const final = {
    kind: 'exited', exitCode: 0, oomKilled: false, durationMs: 10, start: 'warm', steps: 0, cachedSteps: 0,
    cost: { currency: 'USD', total: 0, vcpu: 0, memory: 0, gpu: 0, billedMs: 100 },
    phases: { queuedMs: 0, uploadMs: 0, buildMs: 0, startMs: 5, runMs: 10 }, outputs: { files: 0, bytes: 0 },
  };
  assert.ok(RunEvent.safeParse(final).success);
  for (const key of ['exitCode', 'oomKilled', 'durationMs', 'cost', 'start', 'phases']) {
    const { [key]: _, ...without } = final as Record<string, unknown>;
    assert.ok(!RunEvent.safeParse(without).success, `${key} is required`);
  }
  assert.ok(AgentMessage.safeParse({ type: 'event', runId: 'r-abcdef12', seq: 1, event: final }).success);
  assert.ok(!AgentMessage.safeParse({ type: 'event', runId: 'r-abcdef12', seq: 0, event: final }).success, 'seq starts at 1');
});
