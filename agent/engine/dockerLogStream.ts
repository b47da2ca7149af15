/**
 * Reads the Docker Engine's multiplexed log stream asked with `timestamps: true`: each frame is one log
 * message prefixed with the engine's own nanosecond timestamp. The timestamps give a cursor (the last
 * timestamp taken, and how many frames carried it) from which a restarted agent continues with
 * `since=<cursor time>`, dropping the frames it already had: nothing repeated, nothing skipped, since the
 * engine's `since` is inclusive and its timestamps never go backwards within one container's log.
 * Adjacent frames of the same stream that arrive together are joined into one text, as in the attach path.
 */
import { StringDecoder } from 'node:string_decoder';
import type { TimeCursor as LogCursor } from '../store/runJournal';
import { FrameSplitter, type StreamName } from './dockerStream';

export class DockerLogReader {
  private readonly frames = new FrameSplitter();
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private cursor?: LogCursor;
  private readonly after?: { nanos: bigint; time: string; count: number };
  private skipped = 0;

  constructor(private readonly emit: (stream: StreamName, text: string, cursor: LogCursor) => void, after?: LogCursor) {
    if (after) {
      this.after = { ...after, nanos: timestampNanos(after.time) };
      this.cursor = { ...after };
    }
  }

  /** Where the stream stands: the cursor after the last frame taken. */
  get position(): LogCursor | undefined {
    return this.cursor;
  }

  push(chunk: Buffer): void {
    let run: { stream: StreamName; text: string } | undefined;
    this.frames.push(chunk, (stream, payload) => {
      const space = payload.indexOf(0x20);
      if (space <= 0) return;
      const time = payload.subarray(0, space).toString('latin1');
      if (this.after) {
        const nanos = timestampNanos(time);
        if (nanos < this.after.nanos) return;
        if (nanos === this.after.nanos && this.skipped < this.after.count) {
          this.skipped++;
          return;
        }
      }
      this.cursor = this.cursor && this.cursor.time === time ? { time, count: this.cursor.count + 1 } : { time, count: 1 };
      const text = this.decoders[stream].write(payload.subarray(space + 1));
      if (!text) return;
      if (run && run.stream === stream) run.text += text;
      else {
        if (run) this.emit(run.stream, run.text, this.cursor);
        run = { stream, text };
      }
    });
    if (run) this.emit(run.stream, run.text, this.cursor!);
  }

  /** Flushes a trailing partial UTF-8 sequence at the end of the stream. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[stream].end();
      if (rest && this.cursor) this.emit(stream, rest, this.cursor);
    }
  }
}

/** An RFC 3339 timestamp with up to nine fractional digits, as nanoseconds since the epoch. */
export function timestampNanos(ts: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return 0n;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** The engine's `since` parameter for a cursor: seconds.nanoseconds. */
export function sinceParam(cursor: LogCursor): string {
  const n = timestampNanos(cursor.time);
  return `${n / 1_000_000_000n}.${String(n % 1_000_000_000n).padStart(9, '0')}`;
}
