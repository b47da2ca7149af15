import { timestampNanos } from './dockerLogStream';

/** Drops the frames of a multiplexed, timestamped log stream that were already passed on for their stream. */
export class FrameDeduper {
  private pending = Buffer.alloc(0);
  private readonly last: Record<number, { time: string; payload: Buffer } | undefined> = {};

  filter(chunk: Buffer): Buffer {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const kept: Buffer[] = [];
    let offset = 0;
    while (buf.length - offset >= 8) {
      const size = buf.readUInt32BE(offset + 4);
      if (buf.length - offset < 8 + size) break;
      const frame = buf.subarray(offset, offset + 8 + size);
      offset += 8 + size;
      const payload = frame.subarray(8);
      const space = payload.indexOf(0x20);
      const time = space > 0 ? payload.subarray(0, space).toString('latin1') : '';
      const prev = this.last[frame[0]];
      if (prev && time) {
        const older = timestampNanos(time) < timestampNanos(prev.time);
        if (older || (time === prev.time && payload.equals(prev.payload))) continue;
      }
      if (time) this.last[frame[0]] = { time, payload: Buffer.from(payload) };
      kept.push(frame);
    }
    this.pending = offset < buf.length ? Buffer.from(buf.subarray(offset)) : Buffer.alloc(0);
    return Buffer.concat(kept);
  }
}
