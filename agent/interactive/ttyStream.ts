/**
 * Reads the output of a container that has a terminal: one raw byte stream (the engine does not frame it
 * into stdout and stderr), all of it the run's `stdout`. The same shape as DockerStreamDemuxer, so the
 * engine follows either the same way, and a restarted agent skips by the same byte count.
 */
import { StringDecoder } from 'node:string_decoder';
import type { ByteCursor, StreamName } from '../engine/dockerStream';

export class TtyStreamReader {
  private readonly decoder = new StringDecoder('utf8');
  private consumed = 0;
  private readonly skip: number;

  constructor(private readonly emit: (stream: StreamName, text: string, position: ByteCursor) => void, skip?: ByteCursor) {
    this.skip = skip?.stdout ?? 0;
  }

  get position(): ByteCursor {
    return { stdout: this.consumed, stderr: 0 };
  }

  push(chunk: Buffer): void {
    const start = this.consumed;
    this.consumed += chunk.length;
    if (this.consumed <= this.skip) return;
    const fresh = start < this.skip ? chunk.subarray(this.skip - start) : chunk;
    const text = this.decoder.write(fresh);
    if (text) this.emit('stdout', text, this.position);
  }

  end(): void {
    const rest = this.decoder.end();
    if (rest) this.emit('stdout', rest, this.position);
  }
}
