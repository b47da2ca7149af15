/**
 * Feeds one run's events to one client connection at the pace the client reads them. Live events go out as
 * they happen while little waits in the connection's send buffer. Past `highWater` waiting bytes the feed
 * stops taking live events; once what was sent has left the agent it reads what the client has not had
 * from the run's journal, a batch at a time (the next batch once the last one has left), and goes live
 * again when it has caught up. So a client that reads slowly, or not at all for a while, costs the agent
 * about `highWater` plus one batch, loses nothing, and need not be dropped; a returning client that asks
 * for a long run from its start is fed the same way.
 */
import type { RunEvent } from '../protocol';
import type { Run } from './run';

/** The connection as the feed sees it. */
export interface FeedSink {
  /** Bytes accepted for sending that have not left the process yet. */
  buffered(): number;
  open(): boolean;
  /**
   * Sends one event (`json`: the event as JSON when there is one already); `sent` is called once it has left
   * the process (or with the error that stopped it).
   */
  send(seq: number, event: RunEvent, json?: string, sent?: (err?: Error) => void): void;
}

/** Waiting bytes beyond which live events are no longer sent directly. */
export const HIGH_WATER = 4 * 1024 * 1024;
/** About how many bytes of events are read from the journal and sent at a time while catching up. */
export const BATCH_BYTES = 1024 * 1024;
/** How soon a feed looks again when the connection it shares with other feeds is full. */
const RETRY_MS = 10;

export class RunFeed {
  /** The last seq sent; the journal keeps what comes after it for this feed (Run.hold). */
  private readonly sent: { seq: number };
  private live = false;
  private stopped = false;
  private readonly off: () => void;
  private readonly release: () => void;

  constructor(
    private readonly run: Run, private readonly sink: FeedSink, afterSeq: number,
    private readonly highWater = HIGH_WATER, private readonly batchBytes = BATCH_BYTES,
  ) {
    this.sent = { seq: afterSeq };
    this.release = run.hold(this.sent);
    this.off = run.subscribe((seq, event, json) => this.onLive(seq, event, json));
    this.catchUp();
  }

  stop(): void {
    this.stopped = true;
    this.off();
    this.release();
  }

  private onLive(seq: number, event: RunEvent, json?: string): void {
    if (!this.live || this.stopped) return; // catching up: the journal has it
    if (!this.sink.open()) return this.stop();
    if (this.sink.buffered() <= this.highWater) {
      this.sent.seq = seq;
      this.sink.send(seq, event, json);
      return;
    }
    // Too much waits for this client: send this one, then nothing more until all of it has left.
    this.live = false;
    this.sent.seq = seq;
    this.sink.send(seq, event, json, (err) => (err ? this.stop() : this.catchUp()));
  }

  /** Sends the next batch from the journal; goes live when there is nothing left to catch up. */
  private catchUp(): void {
    if (this.stopped) return;
    if (!this.sink.open()) return this.stop();
    // Other runs followed on the same connection may have filled it meanwhile: wait for room.
    if (this.sink.buffered() > this.highWater) {
      setTimeout(() => this.catchUp(), RETRY_MS);
      return;
    }
    const batch = this.run.readAfter(this.sent.seq, this.batchBytes);
    const last = batch.at(-1);
    if (!last || last.seq >= this.run.lastSeq) {
      // Caught up (synchronously with the read: no event can come between), or the journal has nothing more.
      for (const e of batch) this.sink.send(e.seq, e.event);
      this.sent.seq = Math.max(this.sent.seq, last?.seq ?? 0);
      this.live = true;
      if (this.run.done) this.stop();
      return;
    }
    for (const e of batch.slice(0, -1)) this.sink.send(e.seq, e.event);
    this.sent.seq = last.seq;
    this.sink.send(last.seq, last.event, undefined, (err) => (err ? this.stop() : this.catchUp()));
  }
}
