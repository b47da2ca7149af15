/**
 * One run's record: its spec, its state, and the numbered list of its events. Clients follow a run by
 * subscribing; a late or returning client replays the events after the last sequence number it saw.
 */
import { FinalEvent, HardwareRequest, RunEvent, RunSpec, RunSummary, isFinal } from '../protocol';
import type { JournalEntry, LogCursor } from '../store/runJournal';
import type { ContextTar } from '../engine/engine';
import { RunPorts } from '../tunnel/runPorts';

export type RunState = RunSummary['state'];
/** `json`: the event as JSON, made once for the journal and every client (absent for events read back). */
export type Subscriber = (seq: number, event: RunEvent, json?: string) => void;

const STATE_OF: Partial<Record<RunEvent['kind'], RunState>> = {
  queued: 'queued', uploading: 'uploading', building: 'building', starting: 'starting', running: 'running',
  exited: 'exited', failed: 'failed', cancelled: 'cancelled',
};

/** The state an event puts a run in; undefined for one that leaves it (the engine's transfer comes while building). */
export function stateOf(event: RunEvent): RunState | undefined {
  return event.kind === 'uploading' && event.to ? undefined : STATE_OF[event.kind];
}

/** Where a run's events are kept when the agent journals them (the events then live on disk, not in memory). */
export interface EventStore {
  /** `eventJson`: JSON.stringify(entry.event), when the caller has it already. */
  append(entry: JournalEntry, eventJson?: string): void;
  read(afterSeq: number): JournalEntry[];
  /** The entries after `afterSeq`, about `maxBytes` of them at most: a long run is replayed in batches. */
  readAfter?(afterSeq: number, maxBytes: number): JournalEntry[];
  /** Keeps the events after `holder.seq` stored while the holder still reads them; returns the release. */
  hold?(holder: { seq: number }): () => void;
  close(): void;
}

export interface RunOptions {
  store?: EventStore;
  createdAt?: Date;
  /** A run read back from the journal: where it stood. */
  restored?: { lastSeq: number; state: RunState; final?: FinalEvent };
}

export class Run {
  readonly createdAt: Date;
  /** The tenant whose token created the run: only that tenant can see or touch it. */
  tenant = 'default';
  state: RunState = 'queued';
  final?: FinalEvent;
  private readonly events: RunEvent[] = [];
  private seq = 0;
  private readonly store?: EventStore;
  private readonly subscribers = new Set<Subscriber>();
  readonly abort = new AbortController();
  /** Build secrets, kept apart from the spec (which is journaled and listed) and dropped once the build is done. */
  buildSecrets?: Map<string, Buffer>;
  /** Set by the connection that uploads the context; the lifecycle awaits it on a cold start. */
  context?: { promise: Promise<ContextTar>; resolve(tar: ContextTar): void; reject(err: Error): void };

  /** An interactive run's stdin, clients and idle timeout, while its container runs (agent/interactive/). */
  interactive?: import('../interactive/interactiveRun').InteractiveRun;

  /** Its containers' ports: readiness of the watched ones, and the tunnels open to them. */
  readonly ports: RunPorts;

  /** The image the run's containers use, once known (warm: at once; cold: once built): kept while the run lasts. */
  image?: string;

  constructor(readonly id: string, readonly spec: RunSpec, readonly warmImage: string | undefined, opts: RunOptions = {}) {
    this.createdAt = opts.createdAt ?? new Date();
    this.ports = new RunPorts((e) => this.emit(e), spec.ports ?? [], (spec.parallel ?? 1) > 1);
    this.image = warmImage;
    this.store = opts.store;
    if (opts.restored) {
      this.seq = opts.restored.lastSeq;
      this.state = opts.restored.state;
      this.final = opts.restored.final;
    }
    if (!warmImage && !opts.restored) {
      let resolve!: (p: ContextTar) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<ContextTar>((res, rej) => ((resolve = res), (reject = rej)));
      promise.catch(() => {});
      this.context = { promise, resolve, reject };
    }
  }

  get hardware(): HardwareRequest {
    return this.spec.hardware;
  }

  get lastSeq(): number {
    return this.seq;
  }

  get done(): boolean {
    return this.final !== undefined;
  }

  /** Appends an event (sequence numbers are 1, 2, 3... with no gaps) and hands it to every follower. */
  emit(event: RunEvent, cursor?: LogCursor): void {
    if (this.final) return; // nothing after the final event
    const seq = ++this.seq;
    // Journaled before anyone sees it: a client never holds an event that a restarted agent would not have.
    // Serialised once: the journal line and every client's message are built around the same text.
    const json = JSON.stringify(event);
    if (this.store) this.store.append(cursor ? { seq, event, at: Date.now(), cursor } : { seq, event, at: Date.now() }, json);
    else this.events.push(event);
    // A fan-out run is running while any task runs: a later task waiting for room does not make it queued again.
    if (!(event.kind === 'queued' && event.task !== undefined && this.state === 'running')) this.state = stateOf(event) ?? this.state;
    if (isFinal(event)) {
      this.final = event;
      this.store?.close();
      this.ports.end(`the run ${event.kind === 'exited' ? `exited with code ${event.exitCode}` : event.kind === 'failed' ? 'failed' : 'was cancelled'}`);
    }
    for (const s of this.subscribers) s(seq, event, json);
  }

  /** Replays the events after `afterSeq` to `subscriber`, then keeps it informed. Returns the unsubscribe. */
  follow(afterSeq: number, subscriber: Subscriber): () => void {
    if (this.store && afterSeq < this.seq) {
      // Read synchronously: no event can be emitted between the replay and the subscription.
      for (const e of this.store.read(afterSeq)) if (e.seq <= this.seq) subscriber(e.seq, e.event);
    } else if (!this.store) {
      for (let i = afterSeq; i < this.events.length; i++) subscriber(i + 1, this.events[i]);
    }
    if (this.final) return () => {};
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  /** Keeps `subscriber` informed of new events only (see `readAfter` for the earlier ones). Returns the unsubscribe. */
  subscribe(subscriber: Subscriber): () => void {
    if (this.final) return () => {};
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  /** Keeps the events after `holder.seq` (moved on by the holder as it reads) from being rotated out of the journal. */
  hold(holder: { seq: number }): () => void {
    return this.store?.hold?.(holder) ?? (() => {});
  }

  /**
   * The events after `afterSeq`, oldest first, about `maxBytes` of them at most (at least one when there is
   * one): a client that is behind is fed in batches, so that the agent never holds a long run in memory.
   */
  readAfter(afterSeq: number, maxBytes: number): Array<{ seq: number; event: RunEvent }> {
    if (this.store?.readAfter) return this.store.readAfter(afterSeq, maxBytes).filter((e) => e.seq <= this.seq);
    const all = this.store ? this.store.read(afterSeq).filter((e) => e.seq <= this.seq) : this.events.slice(afterSeq).map((event, i) => ({ seq: afterSeq + i + 1, event }));
    let bytes = 0;
    let n = 0;
    while (n < all.length && bytes < maxBytes) bytes += eventBytes(all[n++].event);
    return all.slice(0, n);
  }

  /** The journal entries after `afterSeq` (empty when the run is not journaled). */
  entries(afterSeq = 0): JournalEntry[] {
    return this.store?.read(afterSeq) ?? [];
  }

  summary(): RunSummary {
    return {
      runId: this.id, name: this.spec.name, state: this.state, createdAt: this.createdAt.toISOString(),
      hardware: this.spec.hardware, lastSeq: this.lastSeq, final: this.final,
      ...(this.spec.interactive ? { interactive: { tty: this.spec.interactive.tty } } : {}),
    };
  }
}

/** Roughly what an event weighs on the wire: its log text, plus a little for the rest. */
function eventBytes(event: RunEvent): number {
  return (event.kind === 'log' ? event.data.length : 0) + 100;
}
