/**
 * Benchmark 3, log throughput: a container prints 1,000,000 lines (about 50 MB). Timed from the command until
 * the client has received the last line: `docker run` attached, `bytenite run` (plain: the lines on stdout)
 * and `bytenite run --json` (the lines inside log events), rotating run by run. Every line must arrive, in
 * order: byte count, line count and sha256 are checked. The agent runs as its own process; its peak memory
 * is read for every run, and once more for a client that stops reading for a while (a slow reader).
 */
import { spawn } from 'node:child_process';
import { createHash, Hash } from 'node:crypto';
import path from 'node:path';
import WebSocket from 'ws';
import { packContext } from '../agent/context/packContext';
import { AgentClient } from '../agent/client/agentClient';
import { PROTOCOL_VERSION } from '../agent/protocol';
import {
  AgentProcess, BENCH_ID, BENCH_LABEL, CLI, DOCKER, PAIRS, Result, comparison, dockerBuild, figure, log, makeContext,
  removeImage, startAgentProcess, tempDir,
} from './lib';

export const LINES = Number(process.env.BENCH_LOG_LINES ?? 1_000_000);
const SUFFIX = 'abcdefghijklmnopqrstuvwxyz0123456789=';
export const COMMAND = ['sh', '-c', `seq 1 ${LINES} | sed 's/.*/line & ${SUFFIX}/'`];

export function expectedOutput(): { bytes: number; sha256: string } {
  const h = createHash('sha256');
  let bytes = 0;
  let chunk = '';
  for (let i = 1; i <= LINES; i++) {
    chunk += `line ${i} ${SUFFIX}\n`;
    if (chunk.length > 1 << 16) {
      h.update(chunk);
      bytes += chunk.length;
      chunk = '';
    }
  }
  h.update(chunk);
  bytes += chunk.length;
  return { bytes, sha256: h.digest('hex') };
}

/** Counts and hashes the container's stdout as it arrives; `lastMs` is when its final byte came. */
class Sink {
  private readonly h: Hash = createHash('sha256');
  bytes = 0;
  lines = 0;
  lastMs = NaN;
  constructor(private readonly t0: number, private readonly total: number) {}
  push(text: string): void {
    this.h.update(text);
    this.bytes += Buffer.byteLength(text);
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.lines++;
    if (this.bytes >= this.total && Number.isNaN(this.lastMs)) this.lastMs = performance.now() - this.t0;
  }
  check(want: { bytes: number; sha256: string }, who: string): number {
    const sha = this.h.digest('hex');
    if (this.bytes !== want.bytes || this.lines !== LINES || sha !== want.sha256) {
      throw new Error(`${who}: got ${this.lines} lines, ${this.bytes} bytes, sha256 ${sha}; want ${LINES} lines, ${want.bytes} bytes, ${want.sha256}`);
    }
    return this.lastMs;
  }
}

/** Runs a command whose stdout is the lines (plain) or protocol events (json); resolves with ms to the last line. */
export function timeToLastLine(cmd: string, args: string[], json: boolean, want: { bytes: number; sha256: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sink = new Sink(t0, want.bytes);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      if (!json) return sink.push(d);
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const e = JSON.parse(buf.slice(0, nl)).event;
        buf = buf.slice(nl + 1);
        if (e.kind === 'log' && e.stream === 'stdout') sink.push(e.data);
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}: ${stderr.slice(-500)}`);
        resolve(sink.check(want, `${path.basename(cmd)} ${json ? '--json' : ''}`));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/**
 * A raw protocol client that starts the run, stops reading its socket for `pauseMs`, then reads everything:
 * resolves with the agent's peak memory during the pause and the catching up, after checking that every
 * line still arrived.
 */
async function slowReader(agent: AgentProcess, ctxDir: string, pauseMs: number, want: { bytes: number; sha256: string }): Promise<number> {
  const pack = await packContext(ctxDir, 'Dockerfile', {});
  await pack.cleanup();
  const token = (await import('node:fs')).readFileSync(agent.tokenFile, 'utf8').trim();
  const ws = new WebSocket(agent.url, { headers: { Authorization: `Bearer ${token}` }, perMessageDeflate: false });
  const sink = new Sink(performance.now(), want.bytes);
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  let failure: string | undefined;
  let runId = '';
  let lastSeq = 0;
  let ended = false;
  const onEvent = (seq: number, event: { kind: string; stream?: string; data?: string; message?: string }) => {
    if (seq <= lastSeq) return;
    lastSeq = seq;
    if (event.kind === 'log' && event.stream === 'stdout') sink.push(event.data!);
    if (['exited', 'failed', 'cancelled'].includes(event.kind)) {
      if (event.kind !== 'exited') failure = `run ${event.kind}: ${event.message ?? ''}`;
      ended = true;
      done();
    }
  };
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.type === 'error') failure = msg.message;
    if (msg.type === 'run.accepted') {
      runId = msg.runId;
      if (msg.upload) failure = 'the run was not warm';
    }
    if (msg.type === 'event') onEvent(msg.seq, msg.event);
  });
  // The agent does not drop a reader that falls behind (it feeds it from the journal as it reads again); if
  // the connection is lost anyway, come back and re-attach after the last sequence number seen, as a real
  // client does. Nothing may be missing after it.
  ws.on('close', () => {
    if (ended) return;
    void AgentClient.connect(agent.url, { token }).then((client) =>
      client.attach(runId, lastSeq, (seq, e) => onEvent(seq, e as Parameters<typeof onEvent>[1])).then(() => finished.then(() => client.close())),
    ).catch((err) => { failure = `re-attach failed: ${(err as Error).message}`; done(); });
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'hello', id: 'h', protocol: PROTOCOL_VERSION, client: 'bytenite-bench/slow-reader' }));
  ws.send(JSON.stringify({
    type: 'run.create', id: 'c',
    spec: { dockerfile: 'Dockerfile', contextDigest: pack.digest, contextBytes: pack.bytes, command: COMMAND, hardware: { cpus: 1, memoryMiB: 256 }, name: 'slow reader' },
  }));
  await new Promise((r) => setTimeout(r, 300)); // let the replies in, then stop reading
  agent.resetPeak();
  const socket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
  socket.pause();
  await new Promise((r) => setTimeout(r, pauseMs));
  socket.resume();
  // Never hang the suite: a reader that does not get the rest within a minute is a failed benchmark.
  const timer = setTimeout(() => { failure ??= 'the rest of the run did not arrive within 60 s after reading again'; done(); }, 60_000);
  await finished;
  clearTimeout(timer);
  // The pause and the catching up after it: the agent reads what the reader missed back from its journal.
  const peak = agent.peakMiB();
  if (ws.readyState === ws.OPEN) ws.close();
  if (failure) throw new Error(`slow reader: ${failure}`);
  sink.check(want, 'slow reader');
  return peak;
}

export async function benchLogThroughput(): Promise<Result[]> {
  const work = tempDir();
  const ctx = makeContext(path.join(work, 'ctx'), 'CMD ["echo", "give a command"]\n');
  const want = expectedOutput();
  const tag = `bytenite-bench-logs:${BENCH_ID}`;
  const hw = ['--cpus', '1', '--memory', '256m'];
  const agent = await startAgentProcess(path.join(work, 'data'));
  try {
    dockerBuild(ctx, tag);
    const peaks: number[] = [];
    const bytenite = async (json: boolean) => {
      agent.resetPeak();
      const args = [CLI, 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, ...hw, ...(json ? ['--json'] : []), '--', ...COMMAND];
      const ms = await timeToLastLine(process.execPath, args, json, want);
      peaks.push(agent.peakMiB());
      return ms;
    };
    const docker = () => timeToLastLine(DOCKER, ['run', '--rm', '--label', BENCH_LABEL, ...hw, tag, ...COMMAND], false, want);
    const d: number[] = [];
    const p: number[] = [];
    const j: number[] = [];
    for (let i = 0; i <= PAIRS; i++) {
      const run = [await docker(), await bytenite(false), await bytenite(true)];
      log(`log throughput: ${i ? `round ${i}/${PAIRS}` : 'warm-up'}: docker ${run[0].toFixed(0)}, plain ${run[1].toFixed(0)}, json ${run[2].toFixed(0)} ms`);
      if (i === 0) {
        peaks.length = 0;
        continue;
      }
      d.push(run[0]);
      p.push(run[1]);
      j.push(run[2]);
    }
    const slow = await slowReader(agent, ctx, 8000, want);
    const mb = (want.bytes / 1e6).toFixed(0);
    return [
      comparison(`3. log throughput, ${LINES.toLocaleString('en')} lines / ${mb} MB: bytenite run (plain) to last line`, p, d, { ratio: 1.2 }),
      comparison(`3. log throughput, ${LINES.toLocaleString('en')} lines / ${mb} MB: bytenite run --json to last line`, j, d, { ratio: 1.2 }),
      figure('3. log throughput: agent peak memory (VmHWM), per run', 'MiB', peaks, 200, `max ${Math.max(...peaks).toFixed(0)} MiB`),
      figure('3. log throughput: agent peak memory while a client reads nothing for 8 s, then catches up', 'MiB', [slow], 200),
    ];
  } finally {
    await agent.stop();
    removeImage(tag);
  }
}
