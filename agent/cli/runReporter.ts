/**
 * What `bytenite run` prints: the container's stdout on stdout and its stderr on stderr, untouched; the
 * run's phases, warm or cold start and cost on stderr, prefixed so they stand apart from the program's
 * own output; upload and build progress redrawn in place on a terminal; one summary line at the end.
 */
import { FinalEvent, RunEvent } from '../protocol';
import { formatUsd } from '../cost/cost';

export interface ReporterOptions {
  json: boolean;
  /** Whether stderr is a terminal (progress redrawn in place, colours). */
  tty: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

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
  return `${what} · ${e.start} start${cached} · ${formatMs(e.durationMs)} · ${formatUsd(e.cost.total)} · ${phases}`;
}

export class RunReporter {
  private progressShown = false;

  constructor(private readonly o: ReporterOptions) {}

  /** Status lines (never the container's own output). */
  note(text: string): void {
    this.clearProgress();
    this.o.stderr.write(this.o.tty ? `\x1b[2m▸ ${text}\x1b[0m\n` : `bytenite: ${text}\n`);
  }

  error(text: string): void {
    this.clearProgress();
    this.o.stderr.write(this.o.tty ? `\x1b[31mbytenite: ${text}\x1b[0m\n` : `bytenite: ${text}\n`);
  }

  event(runId: string, seq: number, e: RunEvent): void {
    if (this.o.json) {
      this.o.stdout.write(JSON.stringify({ type: 'event', runId, seq, event: e }) + '\n');
      return;
    }
    switch (e.kind) {
      case 'queued':
        return this.note(`queued: position ${e.position}, waiting for free capacity`);
      case 'uploading':
        return this.progress(`uploading context ${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)}`, e.bytesDone === e.bytesTotal);
      case 'building':
        return this.progress(`build step ${e.step}/${e.steps}${e.cached ? ' (cached)' : ''}: ${e.instruction}`, !this.o.tty);
      case 'starting':
        return this.note(e.start === 'warm'
          ? 'warm start: image already built from this context, no upload, no build'
          : `cold start: built ${e.steps} steps, ${e.cachedSteps} from cache`);
      case 'running':
        return this.note('running');
      case 'log':
        this.clearProgress();
        if (e.stream === 'stdout') this.o.stdout.write(e.data);
        else if (e.stream === 'stderr') this.o.stderr.write(e.data);
        else if (this.o.tty) this.o.stderr.write(`\x1b[2m${e.data}\x1b[0m`);
        else this.o.stderr.write(e.data);
        return;
      case 'stats':
      case 'cost':
        return;
      case 'exited':
      case 'failed':
      case 'cancelled':
        if (e.kind === 'failed') this.error(e.message);
        return this.note(summaryLine(e));
    }
  }

  private progress(text: string, final: boolean): void {
    if (!this.o.tty) {
      if (final) this.note(text);
      return;
    }
    this.o.stderr.write(`\r\x1b[2K\x1b[2m▸ ${text}\x1b[0m`);
    this.progressShown = true;
    if (final) this.clearProgress(true);
  }

  private clearProgress(keep = false): void {
    if (!this.progressShown) return;
    this.o.stderr.write(keep ? '\n' : '\r\x1b[2K');
    this.progressShown = false;
  }
}
