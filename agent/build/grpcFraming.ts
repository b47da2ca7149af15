/**
 * gRPC's message framing over an HTTP/2 stream: each message is a compressed flag (always 0 here: the agent
 * announces no compression, so the engine sends none), a 4-byte big-endian length, then the protobuf bytes.
 */

/** A 20.10 engine refuses gRPC messages over 4 MiB; nothing the session sends comes near it. */
export const MAX_MESSAGE = 4 * 1024 * 1024;

/** gRPC status codes the session answers with. */
export const GrpcStatus = { OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, NOT_FOUND: 5, UNIMPLEMENTED: 12, INTERNAL: 13 } as const;

export class GrpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'GrpcError';
  }
}

export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Cuts a byte stream into gRPC messages, whatever the chunking of the HTTP/2 DATA frames. */
export class GrpcDeframer {
  private buf: Buffer = Buffer.alloc(0);

  /** Returns the whole messages this chunk completes; throws on a compressed or oversized message. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    while (this.buf.length >= 5) {
      if (this.buf[0] !== 0) throw new GrpcError(GrpcStatus.UNIMPLEMENTED, 'compressed gRPC messages are not accepted');
      const len = this.buf.readUInt32BE(1);
      if (len > MAX_MESSAGE) throw new GrpcError(GrpcStatus.INVALID_ARGUMENT, `gRPC message of ${len} bytes is over the ${MAX_MESSAGE} limit`);
      if (this.buf.length < 5 + len) break;
      out.push(this.buf.subarray(5, 5 + len));
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }

  /** Bytes of a message begun but not complete (non-zero at the end of a stream: it was cut). */
  get pending(): number {
    return this.buf.length;
  }
}
