/**
 * One run's record: its spec, its state, and the numbered list of its events. Clients follow a run by
 * subscribing; a late or returning client replays the events after the last sequence number it saw.
 */
import { FinalEvent, HardwareRequest, RunEvent, RunSpec, RunSummary, isFinal } from '../protocol';

export type RunState = RunSummary['state'];
export type Subscriber = (seq: number, event: RunEvent) => void;

const STATE_OF: Partial<Record<RunEvent['kind'], RunState>> = {
  queued: 'queued', uploading: 'uploading', building: 'building', starting: 'starting', running: 'running',
  exited: 'exited', failed: 'failed', cancelled: 'cancelled',
};

export class Run {
  readonly createdAt = new Date();
  /** The tenant whose token created the run: only that tenant can see or touch it. */
  tenant = 'default';
  state: RunState = 'queued';
  final?: FinalEvent;
  private readonly events: RunEvent[] = [];
  private readonly subscribers = new Set<Subscriber>();
  readonly abort = new AbortController();
  /** Set by the connection that uploads the context; the lifecycle awaits it on a cold start. */
  context?: { promise: Promise<string>; resolve(tarPath: string): void; reject(err: Error): void };

  constructor(readonly id: string, readonly spec: RunSpec, readonly warmImage: string | undefined) {
    if (!warmImage) {
      let resolve!: (p: string) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<string>((res, rej) => ((resolve = res), (reject = rej)));
      promise.catch(() => {});
      this.context = { promise, resolve, reject };
    }
  }

  get hardware(): HardwareRequest {
    return this.spec.hardware;
  }

  get lastSeq(): number {
    return this.events.length;
  }

  get done(): boolean {
    return this.final !== undefined;
  }

  /** Appends an event (sequence numbers are 1, 2, 3... with no gaps) and hands it to every follower. */
  emit(event: RunEvent): void {
    if (this.final) return; // nothing after the final event
    this.events.push(event);
    const seq = this.events.length;
    this.state = STATE_OF[event.kind] ?? this.state;
    if (isFinal(event)) this.final = event;
    for (const s of this.subscribers) s(seq, event);
  }

  /** Replays the events after `afterSeq` to `subscriber`, then keeps it informed. Returns the unsubscribe. */
  follow(afterSeq: number, subscriber: Subscriber): () => void {
    for (let i = afterSeq; i < this.events.length; i++) subscriber(i + 1, this.events[i]);
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  summary(): RunSummary {
    return {
      runId: this.id, name: this.spec.name, state: this.state, createdAt: this.createdAt.toISOString(),
      hardware: this.spec.hardware, lastSeq: this.lastSeq, final: this.final,
    };
  }
}
