// The bad-input campaign: over 10,000 generated and mutated frames from several connections at once (wrong
// types, missing and extra fields, huge strings, deep nesting, random bytes, binary frames at the wrong time,
// replies to nothing, unknown run ids, hostile tar archives, Dockerfile paths out of the context) while a
// well-behaved client runs a job. The agent must answer every bad frame with an error, never stall, and the
// job must finish untouched. Seeded: a failure prints the seed to replay it with BYTENITE_FUZZ_SEED.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { AgentMessage, ClientMessage, MAX_TEXT_FRAME } from '../../agent/protocol';
import { cleanup, makeContext, RawClient, startTestAgent, TestAgent } from './helpers';

const SEED = Number(process.env.BYTENITE_FUZZ_SEED ?? Date.now() % 1_000_000);
const CONNECTIONS = 6;
const PER_CONNECTION = 1750;
const WINDOW = 50;
const HW = { cpus: 0.25, memoryMiB: 32 };

const dirs: string[] = [];
after(() => cleanup(...dirs));

/** mulberry32: small, fast, and the same sequence for the same seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const str = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + int(95))).join('');
  const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[int(16)]).join('');
  return { next, int, pick, str, hex };
}
type Rng = ReturnType<typeof prng>;

const runIdOf = (r: Rng) => `r-${r.hex(16)}`;
const spec = (r: Rng) => ({ dockerfile: 'Dockerfile', contextDigest: r.hex(64), contextBytes: 1024, hardware: { ...HW } });

/** One valid message of each kind: the seeds the mutations start from. */
function templates(r: Rng): Array<Record<string, unknown>> {
  const id = `m-${r.hex(8)}`;
  return [
    { type: 'hello', id, protocol: 1, client: 'fuzz' },
    { type: 'hardware.get', id },
    { type: 'run.create', id, spec: spec(r) },
    { type: 'upload.end', id, runId: runIdOf(r), bytes: 10 },
    { type: 'run.cancel', id, runId: runIdOf(r) },
    { type: 'run.attach', id, runId: runIdOf(r), afterSeq: 0 },
    { type: 'run.list', id },
    { type: 'outputs.get', id, runId: runIdOf(r) },
  ];
}

function weird(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 7 : 9)) {
    case 0: return null;
    case 1: return r.next() * 1e12 - 5e11;
    case 2: return -r.int(1000);
    case 3: return r.str(r.int(40));
    case 4: return r.pick([true, false, NaN, Infinity, 1.5, 2 ** 53 + 1, '', '0', '\u0000', '\ud800', '../../etc/passwd']);
    case 5: return 'x'.repeat(r.pick([129, 300, 5000, 70_000, 300_000]));
    case 6: return r.hex(64);
    case 7: return Array.from({ length: r.int(4) }, () => weird(r, depth + 1));
    default: return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.str(5), weird(r, depth + 1)]));
  }
}

/** Changes one thing in a message (possibly nested): removes, adds, or retypes a field. */
function mutate(r: Rng, msg: Record<string, unknown>): void {
  let obj: Record<string, unknown> = msg;
  // Walk into a nested object now and then (spec, spec.hardware...).
  for (let i = 0; i < 3; i++) {
    const nested = Object.entries(obj).filter(([, v]) => v && typeof v === 'object' && !Array.isArray(v));
    if (!nested.length || r.next() < 0.5) break;
    obj = r.pick(nested)[1] as Record<string, unknown>;
  }
  const keys = Object.keys(obj);
  switch (r.int(4)) {
    case 0: if (keys.length) delete obj[r.pick(keys)]; break;
    case 1: obj[r.pick(['extra', 'surprise', '__proto__', 'constructor', 'inReplyTo', r.str(6)])] = weird(r); break;
    default: if (keys.length) obj[r.pick(keys)] = weird(r);
  }
}

function deep(n: number, inner = '1'): string {
  return '['.repeat(n) + inner + ']'.repeat(n);
}

interface Frame {
  data: string | Buffer;
  /** The id the error reply must echo, when the frame carries a readable one. */
  id?: string;
  binary?: boolean;
}

/** A frame the agent must refuse with an error. */
function badFrame(r: Rng, counts: Record<string, number>): Frame {
  const kind = r.pick(['mutated', 'mutated', 'mutated', 'mutated', 'garbage', 'scalar', 'unknown', 'reply', 'unknown-run',
    'binary', 'dockerfile', 'hardware', 'deep', 'huge', 'nested-huge']);
  counts[kind] = (counts[kind] ?? 0) + 1;
  const id = `f-${r.hex(10)}`;
  // A frame over the size limit is refused unread (too_large), so its error cannot echo the id: mutations can
  // stack several 300,000-character strings past the limit.
  const json = (m: Record<string, unknown>): Frame => {
    const data = JSON.stringify(m);
    const readable = Buffer.byteLength(data) <= MAX_TEXT_FRAME && typeof m.id === 'string';
    return { data, id: readable ? (m.id as string).slice(0, 128) : undefined };
  };
  switch (kind) {
    case 'mutated': {
      for (let tries = 0; tries < 20; tries++) {
        const m = structuredClone(r.pick(templates(r)));
        for (let k = 1 + r.int(3); k > 0; k--) mutate(r, m);
        // Mutations that still read as a valid message are not bad input (a valid run.create would start a run).
        // Checked as the agent will read it: JSON turns NaN into null, drops undefined, and so on.
        if (!ClientMessage.safeParse(JSON.parse(JSON.stringify(m))).success) return json(m);
      }
      return json({ type: 'no.such.type', id });
    }
    case 'garbage': {
      const s = r.pick([r.str(1 + r.int(200)), '{', '{"type":', '}{', '\u0000\u0001', '{"id":"x",}', 'nul', '', ' ']);
      return { data: s };
    }
    case 'scalar': return { data: r.pick(['1', '"hello"', 'null', 'true', '[]', '[{"type":"run.list","id":"a"}]', '{}', '-0', '1e999']) };
    case 'unknown': return json({ type: r.pick(['run.explode', 'RUN.LIST', 'hello ', '', 'event', 'error', 'outputs', 'toString']), id });
    case 'reply': return json(r.pick([
      { type: 'ok', inReplyTo: id },
      { type: 'runs', inReplyTo: id, runs: [] },
      { type: 'event', runId: runIdOf(r), seq: 1, event: { kind: 'queued', position: 1 } },
      { type: 'error', code: 'internal', message: 'no' },
      { type: 'hello', inReplyTo: id, protocol: 1, agent: '0', capabilities: [], engine: 'x' },
    ]));
    case 'unknown-run': return json(r.pick([
      { type: 'run.cancel', id, runId: runIdOf(r) },
      { type: 'run.attach', id, runId: runIdOf(r), afterSeq: r.int(100) },
      { type: 'outputs.get', id, runId: runIdOf(r) },
      { type: 'upload.end', id, runId: runIdOf(r), bytes: r.int(1000) },
    ]));
    case 'binary': return { data: randomBytes(1 + r.int(2048)), binary: true };
    case 'dockerfile': return json({
      type: 'run.create', id,
      spec: { ...spec(r), dockerfile: r.pick(['../Dockerfile', '/etc/passwd', 'a/../../Dockerfile', '..', '.', './', 'a/b/../../..', 'C:\\Dockerfile', '\\\\host\\share', 'a\u0000b', '/']) },
    });
    case 'hardware': return json({
      type: 'run.create', id,
      spec: { ...spec(r), ...r.pick([{ hardware: { cpus: 999, memoryMiB: 64 } }, { hardware: { cpus: 1, memoryMiB: 64, gpu: { type: 'a100', count: 8 } } },
        { hardware: { cpus: 0.5, memoryMiB: 16 * 1024 * 1024 } }, { contextBytes: 2 ** 40 }]) },
    });
    case 'deep': return r.pick([
      { data: deep(10_000 + r.int(100_000)) },
      { data: `{"type":"run.list","id":"${id}","n":${deep(50_000)}}`, id },
      { data: `{"type":"run.create","id":"${id}","spec":{"dockerfile":"Dockerfile","env":{"A":${deep(20_000, '"x"')}}}}`, id },
      { data: `{"type":"run.cancel","id":"${id}","runId":${deep(30_000, '{}')}}`, id },
    ]);
    case 'huge': return r.next() < 0.05
      ? { data: JSON.stringify({ type: 'run.list', id, pad: 'p'.repeat(MAX_TEXT_FRAME) }), id: undefined } // too_large: not parsed, no id
      : json({ type: 'run.list', id: 'i'.repeat(129 + r.int(10_000)) });
    default: return json(r.pick([
      { type: 'run.create', id, spec: { ...spec(r), command: ['c'.repeat(65_537)] } },
      { type: 'run.create', id, spec: { ...spec(r), buildArgs: { A: 'a'.repeat(65_537) } } },
      { type: 'run.create', id, spec: { ...spec(r), secretEnv: Array.from({ length: 1025 }, (_, i) => `S${i}`) } },
      { type: 'hello', id, protocol: 1, client: 'c'.repeat(300_000) },
    ]));
  }
}

/** Sends frames in windows and checks that each gets exactly one error, echoing its id when it had one. */
async function campaign(agent: TestAgent, seed: number, n: number, counts: Record<string, number>): Promise<number> {
  const r = prng(seed);
  const c = await RawClient.ready(agent);
  let sent = 0;
  try {
    while (sent < n) {
      const window: Frame[] = [];
      for (let i = 0; i < WINDOW && sent + window.length < n; i++) window.push(badFrame(r, counts));
      const from = c.messages.length;
      for (const f of window) c.ws.send(f.data, { binary: Boolean(f.binary) });
      const replies = await waitCount(c, from, window.length);
      replies.forEach((m, i) => {
        const f = window[i];
        assert.equal(m.type, 'error', `seed ${seed}: frame ${sent + i} got ${JSON.stringify(m).slice(0, 300)} for ${String(f.data).slice(0, 200)}`);
        if (f.id !== undefined) assert.equal((m as { inReplyTo?: string }).inReplyTo, f.id, `seed ${seed}: the error echoes the id`);
      });
      sent += window.length;
    }
    c.send({ type: 'run.list', id: 'still-there' });
    assert.equal((await c.reply('still-there')).type, 'runs');
    return sent;
  } finally {
    c.close();
  }
}

async function waitCount(c: RawClient, from: number, count: number): Promise<AgentMessage[]> {
  await c.waitFor(() => c.messages.length - from >= count, 20_000);
  await new Promise((r) => setTimeout(r, 0));
  const got = c.messages.slice(from);
  assert.equal(got.length, count, `one reply per frame (got ${got.length} for ${count})`);
  return got;
}

// ---------------------------------------------------------------- hostile tar archives

/** A tar header written by hand, so that it can say what no honest tar tool would. */
function tarEntry(name: string, opts: { type?: string; body?: string; link?: string; mode?: number } = {}): Buffer {
  const body = Buffer.from(opts.body ?? '');
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8');
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  put(name, 0, 100);
  put(oct(opts.mode ?? 0o644, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(opts.type === '0' || opts.type === undefined ? body.length : 0, 12), 124, 12);
  put(oct(1_700_000_000, 12), 136, 12);
  put(' '.repeat(8), 148, 8);
  put(opts.type ?? '0', 156, 1);
  put(opts.link ?? '', 157, 100);
  put('ustar\u000000', 257, 8);
  let sum = 0;
  for (const b of h) sum += b;
  put(oct(sum, 7) + ' ', 148, 8);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([h, opts.type === '0' || opts.type === undefined ? Buffer.concat([body, pad]) : Buffer.alloc(0)]);
}
const tarOf = (...entries: Buffer[]) => Buffer.concat([...entries, Buffer.alloc(1024)]);
const DF = tarEntry('Dockerfile', { body: 'FROM scratch\n' });

const EVIL_TARS: Array<[string, Buffer, RegExp]> = [
  ['../ path', tarOf(DF, tarEntry('../escape.txt', { body: 'x' })), /out of the context/],
  ['deep ../ path', tarOf(DF, tarEntry('a/b/../../../escape', { body: 'x' })), /out of the context/],
  ['absolute path', tarOf(DF, tarEntry('/etc/cron.d/evil', { body: 'x' })), /absolute/],
  // A link may point anywhere (it travels as a link); what may not be is an entry written through one.
  ['file under a symlink', tarOf(DF, tarEntry('l', { type: '2', link: '.' }), tarEntry('l/f', { body: 'x' })), /lies under/],
  ['file under a symlink out', tarOf(DF, tarEntry('etc', { type: '2', link: '/etc' }), tarEntry('etc/cron.d/evil', { body: 'x' })), /lies under/],
  ['folder under a symlink up', tarOf(DF, tarEntry('up', { type: '2', link: '../..' }), tarEntry('up/x', { type: '5' })), /lies under/],
  ['hard link out', tarOf(DF, tarEntry('h', { type: '1', link: '../../etc/shadow' })), /hard link/],
  ['hard link absolute', tarOf(DF, tarEntry('h', { type: '1', link: '/etc/shadow' })), /hard link/],
  ['hard link to nothing sent', tarOf(DF, tarEntry('h', { type: '1', link: 'missing' })), /hard link/],
  ['device file', tarOf(DF, tarEntry('dev', { type: '3' })), /device|cannot hold/],
  ['fifo', tarOf(DF, tarEntry('fifo', { type: '6' })), /FIFO|cannot hold/],
  ['same path twice', tarOf(DF, tarEntry('a', { body: '1' }), tarEntry('a', { body: '2' })), /twice/],
  ['no Dockerfile', tarOf(tarEntry('other', { body: 'x' })), /not in the context/],
  ['Dockerfile is a symlink out', tarOf(tarEntry('Dockerfile', { type: '2', link: '/etc/passwd' })), /is a symlink/],
  ['random bytes', randomBytes(3000), /not a readable tar|damaged|./],
  ['truncated', tarOf(DF, tarEntry('big', { body: 'y'.repeat(5000) })).subarray(0, 1500), /./],
];

/** Each hostile archive goes through a real upload: accepted, sent, refused at upload.end, run failed. */
async function tarCampaign(agent: TestAgent, rounds: number): Promise<number> {
  const c = await RawClient.ready(agent);
  let n = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [name, bytes, why] of EVIL_TARS) {
        const id = `t-${round}-${n}`;
        c.send({ type: 'run.create', id, spec: { dockerfile: 'Dockerfile', contextDigest: randomBytes(32).toString('hex'), contextBytes: bytes.length, hardware: HW } });
        const acc = await c.reply(id);
        assert.ok(acc.type === 'run.accepted' && acc.upload, `${name}: ${JSON.stringify(acc)}`);
        const runId = acc.runId;
        // A request in the middle of an upload is refused too, and does not disturb the upload.
        c.send({ type: 'run.create', id: `${id}-again`, spec: { dockerfile: 'Dockerfile', contextDigest: 'b'.repeat(64), contextBytes: 1, hardware: HW } });
        assert.equal((await c.reply(`${id}-again`)).type, 'error');
        c.ws.send(bytes, { binary: true });
        c.send({ type: 'upload.end', id: `${id}-end`, runId, bytes: bytes.length });
        const end = await c.reply(`${id}-end`);
        assert.ok(end.type === 'error' && end.code === 'bad_context' && why.test(end.message), `${name}: ${JSON.stringify(end)}`);
        const final = await c.final(runId, 20_000);
        assert.ok(final.kind === 'failed' && final.code === 'upload', `${name}: ${JSON.stringify(final)}`);
        assert.ok(!c.events(runId).some((e) => e.event.kind === 'building'), `${name}: never built`);
        n++;
      }
      // More bytes than declared, and an upload.end that lies about the count.
      const over = `o-${round}`;
      c.send({ type: 'run.create', id: over, spec: { dockerfile: 'Dockerfile', contextDigest: randomBytes(32).toString('hex'), contextBytes: 10, hardware: HW } });
      const acc = await c.reply(over);
      assert.equal(acc.type, 'run.accepted');
      const runId = acc.type === 'run.accepted' ? acc.runId : '';
      const from = c.messages.length;
      c.ws.send(Buffer.alloc(100), { binary: true });
      await c.waitFor((m) => c.messages.indexOf(m) >= from && m.type === 'error' && m.code === 'bad_context' && /larger than/.test(m.message));
      c.send({ type: 'upload.end', id: `${over}-end`, runId, bytes: 10 });
      assert.equal((await c.reply(`${over}-end`)).type, 'error');
      assert.equal((await c.final(runId, 20_000)).kind, 'failed');
      n++;
    }
    return n;
  } finally {
    c.close();
  }
}

// ---------------------------------------------------------------- the campaign

test(`${CONNECTIONS * PER_CONNECTION}+ bad frames from ${CONNECTIONS} connections while a good client runs a job untouched`, { timeout: 120_000 }, async () => {
  const agent = await startTestAgent({ maxContextBytes: 8 * 1024 * 1024 });
  const dir = makeContext();
  dirs.push(agent.dataDir, dir);
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  const t0 = Date.now();
  try {
    // The well-behaved client: numbered lines over a few seconds, so the campaign runs all around it.
    const good = await AgentClient.connect(agent.url, { token: agent.token });
    const lines: string[] = [];
    const seqs: number[] = [];
    const LINES = 600;
    const job = await startRun(good, {
      contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: { cpus: 0.5, memoryMiB: 64 },
      command: ['sh', '-c', `i=1; while [ $i -le ${LINES} ]; do echo "good $i"; [ $((i % 60)) -eq 0 ] && sleep 0.4; i=$((i+1)); done`],
      onEvent: (seq, e) => { seqs.push(seq); if (e.kind === 'log' && e.stream === 'stdout') lines.push(e.data); },
    });

    // A watchdog connection: the agent must keep answering quickly during the whole campaign.
    const watch = await RawClient.ready(agent);
    let worst = 0;
    let stop = false;
    const watchdog = (async () => {
      for (let i = 0; !stop; i++) {
        const t = Date.now();
        watch.send({ type: 'run.list', id: `w${i}` });
        await watch.reply(`w${i}`);
        worst = Math.max(worst, Date.now() - t);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    // Invalid UTF-8 in a text frame is a WebSocket protocol error: that connection is closed (1007), nothing else.
    let closed1007 = 0;
    for (let i = 0; i < 20; i++) {
      const c = await RawClient.ready(agent);
      c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0xc0, 0x80]), { binary: false });
      await c.waitFor(() => false, 2000).catch(() => {});
      if (c.closeCode === 1007) closed1007++;
    }

    const counts: Record<string, number> = {};
    const [sent, tars] = await Promise.all([
      Promise.all(Array.from({ length: CONNECTIONS }, (_, k) => campaign(agent, SEED + k, PER_CONNECTION, counts))).then((xs) => xs.reduce((a, b) => a + b, 0)),
      tarCampaign(agent, 3),
    ]);
    stop = true;
    await watchdog;
    watch.close();

    const final = await job.done;
    good.close();
    const elapsed = Date.now() - t0;
    console.log(`fuzz seed ${SEED}: ${sent} bad frames, ${tars} hostile uploads, ${closed1007} invalid-UTF-8 frames, ` +
      `slowest watchdog answer ${worst} ms, ${elapsed} ms in all; by kind ${JSON.stringify(counts)}`);
    assert.ok(sent >= 10_000, `${sent} frames`);
    assert.equal(closed1007, 20);
    assert.equal(final.kind, 'exited');
    assert.equal(final.exitCode, 0);
    assert.equal(lines.join(''), Array.from({ length: LINES }, (_, i) => `good ${i + 1}\n`).join(''), 'every line of the job, in order');
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'its events numbered with no gap');
    assert.ok(worst < 3000, `the agent answered within 3 s throughout (worst ${worst} ms)`);
    assert.deepEqual(crashes, []);
  } finally {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    await agent.close();
  }
});
