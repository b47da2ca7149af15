/**
 * Splits the Docker Engine's multiplexed stream (8-byte header: stream type, 3 zero bytes, big-endian
 * payload length) into stdout and stderr text, keeping the order in which the container wrote them.
 * Adjacent frames of the same stream that arrive together are joined: a program that prints a line at a
 * time would otherwise cost one event per line.
 *
 * It also counts the payload bytes of each stream. The attach stream and the engine's log file hold the
 * same bytes, so a restarted agent can read the log file from the start, skip what it already delivered
 * (`skip`) and go on exactly there: no line lost, none repeated.
 */
import { StringDecoder } from 'node:string_decoder';

export type StreamName = 'stdout' | 'stderr';

/** How many bytes of each stream were taken. */
export interface ByteCursor {
  stdout: number;
  stderr: number;
}

/**
 * Holds the bytes of the multiplexed stream until whole frames are there, and hands out each whole frame.
 * Shared by the attach demuxer below and the timestamped log reader (dockerLogStream.ts).
 */
export class FrameSplitter {
  private pending = Buffer.alloc(0);

  push(chunk: Buffer, onFrame: (stream: StreamName, payload: Buffer) => void): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    while (buf.length - offset >= 8) {
      const size = buf.readUInt32BE(offset + 4);
      if (buf.length - offset < 8 + size) break;
      const stream: StreamName = buf[offset] === 2 ? 'stderr' : 'stdout';
      const payload = buf.subarray(offset + 8, offset + 8 + size);
      offset += 8 + size;
      onFrame(stream, payload);
    }
    this.pending = offset < buf.length ? Buffer.from(buf.subarray(offset)) : Buffer.alloc(0);
  }
}

export class DockerStreamDemuxer {
  private readonly frames = new FrameSplitter();
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly consumed: ByteCursor = { stdout: 0, stderr: 0 };
  private readonly skip: ByteCursor;

  constructor(private readonly emit: (stream: StreamName, text: string, position: ByteCursor) => void, skip?: ByteCursor) {
    this.skip = { stdout: skip?.stdout ?? 0, stderr: skip?.stderr ?? 0 };
  }

  /** Bytes of each stream taken so far, skipped ones included. */
  get position(): ByteCursor {
    return { ...this.consumed };
  }

  push(chunk: Buffer): void {
    let run: { stream: StreamName; text: string } | undefined;
    this.frames.push(chunk, (stream, frame) => {
      // Emit the other stream's text before counting this frame, so each position says exactly what was given.
      if (run && run.stream !== stream) {
        this.emit(run.stream, run.text, this.position);
        run = undefined;
      }
      this.consumed[stream] += frame.length;
      let payload = frame;
      if (this.skip[stream] > 0) {
        const n = Math.min(this.skip[stream], payload.length);
        this.skip[stream] -= n;
        payload = payload.subarray(n);
      }
      const text = payload.length ? this.decoders[stream].write(payload) : '';
      if (!text) return;
      if (run) run.text += text;
      else run = { stream, text };
    });
    if (run) this.emit(run.stream, run.text, this.position);
  }

  /** Flushes a trailing partial UTF-8 sequence at the end of the stream. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[stream].end();
      if (rest) this.emit(stream, rest, this.position);
    }
  }
}
