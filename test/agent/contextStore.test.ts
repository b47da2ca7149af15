// The context store over a real agent WebSocket and a real Docker Engine: a second run with one file changed
// uploads only that file's content and the image holds the new content; content that does not match its
// sha256 is refused; another tenant is asked for the content a first tenant already uploaded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { listForBuild } from '../../agent/context/packContext';
import { manifestParts, toManifest } from '../../agent/context/manifest';
import type { AgentMessage, RunEvent } from '../../agent/protocol';
import { cleanup, makeContext, RawClient, startTestAgent } from './helpers';

const HW = { cpus: 0.5, memoryMiB: 64 };
const dirs: string[] = [];
after(() => cleanup(...dirs));
const hex = (n: number) => randomBytes(n).toString('hex');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Runs `command` on the context in `dir`; returns its stdout, start kind and the largest `uploading` count. */
async function run(client: AgentClient, dir: string, command: string[]) {
  let out = '';
  let start = '';
  let sent = 0;
  const events: RunEvent[] = [];
  const r = await startRun(client, {
    contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: HW, command,
    // The store is what is tested: the agent on loopback would otherwise read the folder itself (localContext.test.ts).
    localContext: false,
    onEvent: (_s, e) => {
      events.push(e);
      if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
      if (e.kind === 'starting') start = e.start;
      if (e.kind === 'uploading' && !e.to) sent = Math.max(sent, e.bytesDone); // what the client sent, not the engine's pull
    },
  });
  const final = await r.done;
  return { final, out, start, sent, events };
}

test('a second run with one file changed uploads only that content, and the image holds it', async () => {
  const agent = await startTestAgent();
  dirs.push(agent.dataDir);
  const files: Record<string, string> = { 'app/config.txt': 'version 1\n' };
  for (let i = 0; i < 20; i++) files[`data/blob-${i}.bin`] = randomBytes(64 * 1024).toString('base64');
  const dir = makeContext(files, 'COPY . /ctx\n', { uniq: true });
  dirs.push(dir);
  const client = await AgentClient.connect(agent.url, { token: agent.token });
  try {
    assert.ok(client.hello.capabilities.includes('context-store'));
    const first = await run(client, dir, ['cat', '/ctx/app/config.txt']);
    assert.equal(first.final.exitCode, 0, JSON.stringify(first.final));
    assert.equal(first.start, 'cold');
    assert.equal(first.out, 'version 1\n');
    const listed = await listForBuild(dir, 'Dockerfile', {});
    assert.ok(first.sent >= listed.bytes, `the first run sends every content (${first.sent} < ${listed.bytes})`);

    const changed = `version 2 ${hex(8)}\n`;
    writeFileSync(path.join(dir, 'app/config.txt'), changed);
    const second = await run(client, dir, ['sh', '-c', 'cat /ctx/app/config.txt; cat /ctx/data/*.bin | md5sum']);
    assert.equal(second.final.exitCode, 0, JSON.stringify(second.final));
    assert.equal(second.start, 'cold');
    const manifestBytes = manifestParts(toManifest((await listForBuild(dir, 'Dockerfile', {})).entries))
      .reduce((n, p) => n + JSON.stringify(p).length, 0);
    // What crossed the wire: the manifest's text (each part wrapped in a small message) and the one changed content.
    assert.ok(second.sent >= Buffer.byteLength(changed), 'the changed content is counted');
    assert.ok(second.sent < manifestBytes + 1024 + Buffer.byteLength(changed), `sent ${second.sent} bytes: more than the manifest and the changed file`);
    // The shell's glob sorts as JS does on these ASCII names.
    const data = Object.keys(files).filter((p) => p.startsWith('data/')).sort().map((p) => Buffer.from(files[p]));
    const md5 = createHash('md5').update(Buffer.concat(data)).digest('hex');
    assert.equal(second.out, `${changed}${md5}  -\n`, 'the image has the new content, and the unchanged files from the store');
  } finally {
    client.close();
    await agent.close();
  }
});

/** Creates a run over a raw connection and sends its manifest; returns the run id and the contents asked for. */
async function manifestRun(c: RawClient, dir: string, id: string): Promise<{ runId: string; missing: string[]; files: Map<string, string> }> {
  const listed = await listForBuild(dir, 'Dockerfile', {});
  c.send({
    type: 'run.create', id, spec: { dockerfile: 'Dockerfile', contextDigest: listed.digest, contextBytes: listed.bytes, hardware: HW, command: ['true'] },
  });
  const accepted = await c.reply(id);
  assert.equal(accepted.type, 'run.accepted', JSON.stringify(accepted));
  const runId = (accepted as Extract<AgentMessage, { type: 'run.accepted' }>).runId;
  const parts = manifestParts(toManifest(listed.entries));
  const missing: string[] = [];
  for (const [i, entries] of parts.entries()) {
    c.send({ type: 'context.manifest', id: `${id}-m${i}`, runId, entries, last: i === parts.length - 1 });
    const r = await c.reply(`${id}-m${i}`);
    assert.equal(r.type, 'context.missing', JSON.stringify(r));
    missing.push(...(r as Extract<AgentMessage, { type: 'context.missing' }>).sha256s);
  }
  const files = new Map<string, string>();
  for (const e of listed.entries) if (e.type === 'file') files.set(e.sha256, e.path);
  return { runId, missing, files };
}

test('content that does not match its sha256 is refused with a clear error, and the run fails', async () => {
  const agent = await startTestAgent();
  dirs.push(agent.dataDir);
  const dir = makeContext({ 'note.txt': `the real content ${hex(8)}\n` }, 'COPY note.txt /note.txt\n', { uniq: true });
  dirs.push(dir);
  const c = await RawClient.ready(agent);
  try {
    const { runId, missing, files } = await manifestRun(c, dir, 'bad');
    const note = sha256(Buffer.from(''));
    assert.ok(!missing.includes(note), 'an empty content is never asked for');
    const noteSha = [...files].find(([, p]) => p === 'note.txt')![0];
    assert.ok(missing.includes(noteSha));
    // Every asked content, but note.txt's bytes replaced by others of the same length.
    const bytes = Buffer.concat(missing.map((sha) => {
      const real = readFileSync(path.join(dir, files.get(sha)!));
      return sha === noteSha ? Buffer.alloc(real.length, 0x41) : real;
    }));
    c.ws.send(bytes, { binary: true });
    c.send({ type: 'upload.end', id: 'bad-end', runId, bytes: bytes.length });
    const end = await c.reply('bad-end');
    assert.equal(end.type, 'error');
    const err = end as Extract<AgentMessage, { type: 'error' }>;
    assert.equal(err.code, 'bad_context');
    assert.match(err.message, /"note\.txt" does not match its sha256/);
    // The build started on the manifest and was reading the contents as they came: it fails as the upload did.
    const final = await c.waitFor((m) => m.type === 'event' && m.runId === runId && m.event.kind === 'failed');
    const failed = final.type === 'event' && final.event.kind === 'failed' ? final.event : undefined;
    assert.equal(failed?.code, 'upload');
    assert.match(failed?.message ?? '', /"note\.txt" does not match its sha256/);

    // Nothing of the refused content was kept: the next run is asked for it again.
    const again = await manifestRun(c, dir, 'again');
    assert.ok(again.missing.includes(noteSha), 'the refused content is asked for again');
    assert.ok(!again.missing.some((s) => s !== noteSha && missing.includes(s)), 'the contents that verified are not asked again');
    c.send({ type: 'run.cancel', id: 'again-cancel', runId: again.runId });
    await c.reply('again-cancel');
  } finally {
    c.ws.close();
    await agent.close();
  }
});

test('a client that leaves halfway through the contents: the run fails as an upload, nothing is left waiting', async () => {
  const agent = await startTestAgent();
  dirs.push(agent.dataDir);
  const dir = makeContext({ 'big.bin': randomBytes(3 << 20).toString('hex') }, 'COPY big.bin /big.bin\n', { uniq: true });
  dirs.push(dir);
  const c = await RawClient.ready(agent);
  const { runId, missing, files } = await manifestRun(c, dir, 'gone');
  const all = Buffer.concat(missing.map((sha) => readFileSync(path.join(dir, files.get(sha)!))));
  c.ws.send(all.subarray(0, all.length >> 1), { binary: true });
  await new Promise((r) => setTimeout(r, 200));
  c.ws.close();
  const again = await RawClient.ready(agent);
  try {
    again.send({ type: 'run.attach', id: 'att', runId, afterSeq: 0 });
    const final = await again.waitFor((m) => m.type === 'event' && m.runId === runId && (m.event.kind === 'failed' || m.event.kind === 'exited'));
    const failed = final.type === 'event' && final.event.kind === 'failed' ? final.event : undefined;
    assert.equal(failed?.code, 'upload', JSON.stringify(final));
    assert.match(failed?.message ?? '', /disconnected/);
  } finally {
    again.ws.close();
    await agent.close();
  }
});

test('another tenant is asked for the content a first tenant already uploaded', async () => {
  const alice = `alice-${hex(16)}`;
  const bob = `bob-${hex(16)}`;
  const agent = await startTestAgent({ tokens: new Map([[alice, 'alice'], [bob, 'bob']]) });
  dirs.push(agent.dataDir);
  const dir = makeContext({ 'shared.txt': `alice and bob ${hex(8)}\n` }, 'COPY shared.txt /shared.txt\n', { uniq: true });
  dirs.push(dir);
  const a = await AgentClient.connect(agent.url, { token: alice });
  try {
    const ran = await run(a, dir, ['cat', '/shared.txt']);
    assert.equal(ran.final.exitCode, 0, JSON.stringify(ran.final));
  } finally {
    a.close();
  }
  // Alice again: everything is in her store.
  const ca = await RawClient.open(agent.url, alice);
  ca.send({ type: 'hello', id: 'h', protocol: 1, client: 'raw-test' });
  await ca.reply('h');
  // A new Dockerfile line so the digest differs and the run is cold, with the same files otherwise.
  writeFileSync(path.join(dir, 'Dockerfile'), `${readFileSync(path.join(dir, 'Dockerfile'), 'utf8')}LABEL again=1\n`);
  const aliceAgain = await manifestRun(ca, dir, 'a2');
  const dockerfileSha = [...aliceAgain.files].find(([, p]) => p === 'Dockerfile')![0];
  assert.deepEqual(aliceAgain.missing, [dockerfileSha], 'alice is asked only for the changed Dockerfile');
  ca.send({ type: 'run.cancel', id: 'a2-cancel', runId: aliceAgain.runId });
  await ca.reply('a2-cancel');
  ca.ws.close();

  const cb = await RawClient.open(agent.url, bob);
  cb.send({ type: 'hello', id: 'h', protocol: 1, client: 'raw-test' });
  await cb.reply('h');
  try {
    const bobRun = await manifestRun(cb, dir, 'b1');
    assert.deepEqual(new Set(bobRun.missing), new Set(bobRun.files.keys()), 'bob is asked for every content, alice\'s uploads are not his');
    cb.send({ type: 'run.cancel', id: 'b1-cancel', runId: bobRun.runId });
    await cb.reply('b1-cancel');
  } finally {
    cb.ws.close();
    await agent.close();
  }
});
