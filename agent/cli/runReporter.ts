/**
 * What `bytenite run` prints: the container's stdout on stdout and its stderr on stderr, untouched; the
 * run's phases, warm or cold start and cost on stderr, prefixed so they stand apart from the program's
 * own output; upload and build progress redrawn in place on a terminal; one summary line at the end.
 * Output is written once per tick of events (see `write`), not once per event.
 */
import type { FinalEvent, RunEvent } from '../protocol';
import { isFinal } from '../protocol/finalEvent';
import { formatUsd } from '../cost/cost';
import { formatBytes } from '../hardware/sizes';

export interface ReporterOptions {
  json: boolean;
  /** Whether stderr is a terminal (progress redrawn in place, colours). */
  tty: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Show only this task's logs and stats of a fan-out run (`--task K`). */
  task?: number;
  /** End the CLI's own lines with \r\n: a program has the terminal in raw mode (`run -it`). */
  crlf?: boolean;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

export { formatBytes };

/** The one-line summary printed when a run ends. */
export function summaryLine(e: FinalEvent): string {
  const p = e.phases;
  const what = e.kind === 'exited' ? `exited ${e.exitCode}${e.oomKilled ? ' (OOM-killed: raise --memory)' : ''}`
    : e.kind === 'cancelled' ? `cancelled${e.exitCode !== null ? ` (exit ${e.exitCode})` : ''}`
    : `failed (${e.code})`;
  const phases = [
    p.queuedMs > 5 ? `queue ${formatMs(p.queuedMs)}` : '',
    e.start === 'cold' ? `upload ${formatMs(p.uploadMs)}` : '',
    e.start === 'cold' ? `build ${formatMs(p.buildMs)}` : '',
    `start ${formatMs(p.startMs)}`, `run ${formatMs(p.runMs)}`,
  ].filter(Boolean).join(', ');
  const cached = e.start === 'cold' && e.steps ? `, ${e.cachedSteps}/${e.steps} steps cached` : '';
  const tasks = e.tasks ? ` · ${e.tasks.length} tasks: ${e.tasks.map(taskSummary).join('; ')}` : '';
  const by = e.builder ? ` (${e.builder === 'buildkit' ? 'BuildKit' : 'legacy builder'})` : '';
  return `${what} · ${e.start} start${by}${cached} · ${formatMs(e.durationMs)} · ${formatUsd(e.cost.total)} · ${phases}${tasks}`;
}

/** `task 2 exit 3, 1.20 s, $0.000123` (or why it did not run). */
function taskSummary(t: NonNullable<FinalEvent['tasks']>[number]): string {
  const exit = t.exitCode === null ? 'did not run' : `exit ${t.exitCode}${t.oomKilled ? ' (OOM-killed)' : ''}`;
  return `task ${t.index} ${exit}, ${formatMs(t.durationMs)}, ${formatUsd(t.cost.total)}`;
}

/** Output held for one write beyond which it is written at once rather than at the end of the tick. */
const BATCH_BYTES = 256 * 1024;

export class RunReporter {
  private progressShown = false;
  /** Piped, legacy builder: the step last started, printed once its cached flag is known. */
  private legacyStep?: Extract<RunEvent, { kind: 'building' }>;
  /** The total of the upload last shown complete. */
  private uploadDone?: number;
  /** BuildKit: the context bytes the engine asked for and was sent, as last told (shown with the cold start). */
  private engineUpload?: { bytesDone: number; bytesTotal: number };
  /**
   * Output not written yet, all for `pendingTo`: the events that arrive in one tick (one read from the
   * agent's socket brings many) go out as one write instead of one each. Anything written to the other
   * stream flushes it first, so the two keep their order.
   */
  private pending: string[] = [];
  private pendingBytes = 0;
  private pendingTo?: NodeJS.WritableStream;
  private flushScheduled = false;
  /** Per task and stream of a fan-out run: the start of a line not yet ended, held so tasks' lines never mix. */
  private readonly partial = new Map<string, { task: number; stream: string; text: string }>();

  constructor(private readonly o: ReporterOptions) {}

  /** Status lines (never the container's own output). */
  note(text: string): void {
    this.clearProgress();
    const eol = this.o.crlf ? '\r\n' : '\n';
    this.write(this.o.stderr, this.o.tty ? `\x1b[2m▸ ${text}\x1b[0m${eol}` : `bytenite: ${text}${eol}`);
    this.flush();
  }

  /** A forward's container port accepts connections: where to reach it, and how long after start. */
  forwardReady(runId: string, local: { host: string; port: number; url: string }, containerPort: number, ms: number): void {
    if (this.o.json) {
      this.write(this.o.stdout, JSON.stringify({ type: 'forward', runId, local: `${local.host}:${local.port}`, url: local.url, port: containerPort, ms }) + '\n');
      return;
    }
    this.note(`${local.url} -> port ${containerPort} of the container (ready ${ms} ms after start)`);
  }

  error(text: string): void {
    this.clearProgress();
    const eol = this.o.crlf ? '\r\n' : '\n';
    this.write(this.o.stderr, this.o.tty ? `\x1b[31mbytenite: ${text}\x1b[0m${eol}` : `bytenite: ${text}${eol}`);
    this.flush();
  }

  /** Writes out what is held (it is written at the end of the tick anyway). */
  flush(): void {
    if (!this.pendingTo) return;
    const text = this.pending.length === 1 ? this.pending[0] : this.pending.join('');
    const to = this.pendingTo;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingTo = undefined;
    to.write(text);
  }

  private write(to: NodeJS.WritableStream, text: string): void {
    if (this.pendingTo !== to) this.flush();
    this.pendingTo = to;
    this.pending.push(text);
    this.pendingBytes += text.length;
    if (this.pendingBytes >= BATCH_BYTES) return this.flush();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  event(runId: string, seq: number, e: RunEvent): void {
    if (this.o.json) {
      if ('task' in e && this.hidden(e.task)) return;
      this.write(this.o.stdout, JSON.stringify({ type: 'event', runId, seq, event: e }) + '\n');
      if (isFinal(e)) this.flush();
      return;
    }
    // A legacy step's line waits for the next event: its `cached` comes in a second event for the same step.
    if (e.kind !== 'building' || e.state !== undefined || e.step !== this.legacyStep?.step) this.flushLegacyStep();
    switch (e.kind) {
      case 'queued':
        if (this.hidden(e.task)) return;
        return this.note(`${e.task === undefined ? '' : `task ${e.task} `}queued: ${e.reason ?? `position ${e.position}, waiting for free capacity`}`);
      case 'uploading': {
        if (e.to === 'engine') {
          this.engineUpload = e;
          // Live on a terminal; piped, the total goes with the cold start line (the transfer's end is the build's).
          if (this.o.tty && e.bytesDone < e.bytesTotal) this.progress(`sending context to the engine ${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)}`, false);
          return;
        }
        const done = e.bytesDone === e.bytesTotal;
        // The agent may confirm a finished upload twice (the last part, then upload.end): one line is enough.
        if (done && this.uploadDone === e.bytesTotal) return;
        if (done) this.uploadDone = e.bytesTotal;
        return this.progress(`uploading context ${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)}`, done);
      }
      case 'building': {
        const text = `build step ${e.step}/${e.steps}: ${e.instruction}`;
        if (this.o.tty) return this.progress(`${text}${e.cached ? ' (cached)' : ''}`, false);
        // Piped: each step once, when it ends (BuildKit says when), with its time or that it came from cache.
        if (e.state === 'done') return this.note(`${text} (${e.cached ? 'cached' : formatMs(e.ms ?? 0)})`);
        if (e.state === undefined) this.legacyStep = e;
        return;
      }
      case 'starting':
        return this.note(e.start === 'hot'
          ? 'hot start: image already built, container started ahead of time'
          : e.start === 'warm'
          ? 'warm start: image already built from this context, no upload, no build'
          : `cold start: built ${e.steps} steps, ${e.cachedSteps} from cache${e.builder ? ` by ${e.builder === 'buildkit' ? 'BuildKit' : 'the legacy builder'}` : ''}${this.sentToEngine()}${e.reason ? `; ${e.reason.replace(/^cold: /, '')}` : ''}`);
      case 'running':
        if (this.hidden(e.task)) return;
        return this.note(e.task === undefined ? 'running' : `task ${e.task} running`);
      case 'log': {
        if (this.hidden(e.task)) return;
        this.clearProgress();
        const data = this.labelled(e.task, e.stream, e.data);
        if (e.stream === 'stdout') this.write(this.o.stdout, data);
        else if (e.stream === 'stderr') this.write(this.o.stderr, data);
        else if (this.o.tty) this.write(this.o.stderr, `\x1b[2m${data}\x1b[0m`);
        else this.write(this.o.stderr, data);
        return;
      }
      case 'volume':
        return this.error(e.message);
      case 'placed':
        return this.hidden(e.task) ? undefined : this.note(e.message);
      case 'idle':
        return this.error(e.message);
      case 'exec':
        // Said on stderr, as the other notes: someone else's shell in this run is worth knowing about.
        return this.note(e.state === 'started'
          ? `exec by ${e.by}: ${e.command.join(' ')}${e.tty ? ' (terminal)' : ''}`
          : `exec by ${e.by} ended${e.exitCode !== undefined && e.exitCode !== null ? ` (exit ${e.exitCode})` : ''}: ${e.command.join(' ')}`);
      case 'stats':
      case 'cost':
      case 'port': // announced with its local address by forwardReady()
        return;
      case 'exited':
      case 'failed':
      case 'cancelled':
        this.flushPartial();
        if (e.kind === 'failed') this.error(e.message);
        if (e.outputs.notKept) this.error(e.outputs.notKept);
        return this.note(summaryLine(e));
    }
  }

  /** Download progress of the outputs, redrawn in place on a terminal (nothing when piped: the end is noted). */
  downloading(received: number, total: number | undefined): void {
    if (!this.o.tty || this.o.json) return;
    this.progress(`outputs ${formatBytes(received)}${total ? ` / ${formatBytes(total)}` : ''}`, false);
  }

  /** With `--task K`, the other tasks' events are not shown (events of the whole run always are). */
  private hidden(task: number | undefined): boolean {
    return this.o.task !== undefined && task !== undefined && task !== this.o.task;
  }

  /**
   * Prefixes each line of a fan-out task's output with `[task N] ` and prints whole lines only (the rest
   * waits for its end), so lines of different tasks never run into each other. A run of one task, or one
   * task shown alone (`--task`), prints its output untouched.
   */
  private labelled(task: number | undefined, stream: string, data: string): string {
    if (task === undefined || this.o.task !== undefined) return data;
    const key = `${task}:${stream}`;
    const text = (this.partial.get(key)?.text ?? '') + data;
    const cut = text.lastIndexOf('\n') + 1;
    if (cut < text.length) this.partial.set(key, { task, stream, text: text.slice(cut) });
    else this.partial.delete(key);
    return text.slice(0, cut).split(/(?<=\n)/).filter(Boolean).map((line) => `[task ${task}] ${line}`).join('');
  }

  /** The run ended: lines that never got their end are printed as they are. */
  private flushPartial(): void {
    for (const { task, stream, text } of this.partial.values()) {
      this.write(stream === 'stdout' ? this.o.stdout : this.o.stderr, `[task ${task}] ${text}\n`);
    }
    this.partial.clear();
  }

  private flushLegacyStep(): void {
    const e = this.legacyStep;
    if (!e) return;
    this.legacyStep = undefined;
    this.note(`build step ${e.step}/${e.steps}: ${e.instruction}${e.cached ? ' (cached)' : ''}`);
  }

  /** `, 1.0 MiB of files sent to the engine`, or that its copy had them all; '' without BuildKit's figures. */
  private sentToEngine(): string {
    const t = this.engineUpload;
    if (!t) return '';
    return t.bytesTotal === 0 ? ', no file sent to the engine (its copy had what the build reads)' : `, ${formatBytes(t.bytesDone)} of files sent to the engine`;
  }

  private progress(text: string, final: boolean): void {
    if (!this.o.tty) {
      if (final) this.note(text);
      return;
    }
    this.write(this.o.stderr, `\r\x1b[2K\x1b[2m▸ ${text}\x1b[0m`);
    this.flush();
    this.progressShown = true;
    if (final) this.clearProgress(true);
  }

  private clearProgress(keep = false): void {
    if (!this.progressShown) return;
    this.write(this.o.stderr, keep ? '\n' : '\r\x1b[2K');
    this.progressShown = false;
  }
}
