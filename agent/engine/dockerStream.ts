/**
 * Splits the Docker Engine's multiplexed attach stream (8-byte header: stream type, 3 zero bytes, big-endian
 * payload length) into stdout and stderr text, keeping the order in which the container wrote them.
 * Adjacent frames of the same stream that arrive together are joined: a program that prints a line at a
 * time would otherwise cost one event per line.
 */
import { StringDecoder } from 'node:string_decoder';

export type StreamName = 'stdout' | 'stderr';

export class DockerStreamDemuxer {
  private pending = Buffer.alloc(0);
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };

  constructor(private readonly emit: (stream: StreamName, text: string) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let run: { stream: StreamName; text: string } | undefined;
    let offset = 0;
    while (buf.length - offset >= 8) {
      const size = buf.readUInt32BE(offset + 4);
      if (buf.length - offset < 8 + size) break;
      const stream: StreamName = buf[offset] === 2 ? 'stderr' : 'stdout';
      const text = this.decoders[stream].write(buf.subarray(offset + 8, offset + 8 + size));
      offset += 8 + size;
      if (!text) continue;
      if (run && run.stream === stream) run.text += text;
      else {
        if (run) this.emit(run.stream, run.text);
        run = { stream, text };
      }
    }
    if (run) this.emit(run.stream, run.text);
    this.pending = offset < buf.length ? Buffer.from(buf.subarray(offset)) : Buffer.alloc(0);
  }

  /** Flushes a trailing partial UTF-8 sequence at the end of the stream. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[stream].end();
      if (rest) this.emit(stream, rest);
    }
  }
}
