/**
 * Containers made ahead of time, by key (what a run would ask for: image, command, environment, limits),
 * so that a run like a recent one starts without waiting for create + attach + start ("hot" start).
 * The pool is small and forgets: an idle container is discarded after `idleMs`, the oldest first when
 * the pool is full, and a key whose containers cannot be made is not tried again.
 */

export interface PoolEntry {
  /** False once the container has died or its streams ended: it cannot take a run any more. */
  alive(): boolean;
  discard(): Promise<void>;
}

export interface HotPoolOptions<S, E extends PoolEntry> {
  /** Most idle containers in all (0 turns the pool off). */
  max: number;
  /** How long an idle container is kept. */
  idleMs: number;
  make(spec: S): Promise<E>;
  /** Makes at once (default 2): enough to keep ahead of a queue, few enough to leave the engine to the runs. */
  concurrency?: number;
  onError?(err: Error, key: string): void;
}

interface Idle<E> {
  key: string;
  entry: E;
  timer: NodeJS.Timeout;
}

/** After this many failed makes in a row a key is given up on (an image whose command cannot run). */
const MAX_FAILURES = 2;

export class HotPool<S, E extends PoolEntry> {
  /** Idle containers, oldest first. */
  private idle: Idle<E>[] = [];
  private readonly failures = new Map<string, number>();
  /** Containers asked for and not yet being made, by key. */
  private readonly pending = new Map<string, { spec: S; n: number }>();
  /** Containers being made, by key. */
  private readonly making = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  /** The spec of each key asked for (what a container being made will run). */
  private readonly specOf = new Map<string, S>();
  private closed = false;

  constructor(private readonly opts: HotPoolOptions<S, E>) {}

  get enabled(): boolean {
    return this.opts.max > 0 && !this.closed;
  }

  /** How many idle containers are ready for `key`. */
  ready(key: string): number {
    return this.idle.filter((i) => i.key === key && i.entry.alive()).length;
  }

  /** Whether `entry` is held by the pool (idle): such a container belongs to no run yet. */
  holds(match: (entry: E) => boolean): boolean {
    return this.idle.some((i) => match(i.entry));
  }

  /** Takes an idle, living container for `key` out of the pool; the caller owns it from then on. */
  take(key: string): E | undefined {
    for (let i = 0; i < this.idle.length; i++) {
      const it = this.idle[i];
      if (it.key !== key) continue;
      this.idle.splice(i, 1);
      clearTimeout(it.timer);
      if (it.entry.alive()) return it.entry;
      void it.entry.discard();
      i--;
    }
    return undefined;
  }

  /** Specs of the containers asked for or being made (their images must stay: a container is about to use them). */
  coming(): S[] {
    const out: S[] = [];
    for (const [key, spec] of this.specOf) {
      if (this.pending.has(key) || (this.making.get(key) ?? 0) > 0) out.push(spec);
      else this.specOf.delete(key);
    }
    return out;
  }

  /** Ready, being made or asked for. */
  private promised(key: string): number {
    return this.ready(key) + (this.making.get(key) ?? 0) + (this.pending.get(key)?.n ?? 0);
  }

  /** Asks for one more container for `key` than are ready, being made or asked for, within the pool's size. */
  more(key: string, spec: S): void {
    this.want(key, spec, this.promised(key) + 1);
  }

  /** Asks for `n` idle containers for `key`, made in the background. */
  want(key: string, spec: S, n = 1): void {
    if (!this.enabled || (this.failures.get(key) ?? 0) >= MAX_FAILURES) return;
    const missing = Math.min(n, this.opts.max) - this.promised(key);
    if (missing <= 0) return;
    this.specOf.set(key, spec);
    const p = this.pending.get(key);
    if (p) p.n += missing;
    else this.pending.set(key, { spec, n: missing });
    this.pump();
  }

  /** Starts makes while fewer than `concurrency` run: the engine serves runs too. */
  private pump(): void {
    while (this.inFlight.size < (this.opts.concurrency ?? 2)) {
      const next = this.pending.entries().next();
      if (next.done) return;
      const [key, want] = next.value;
      if (--want.n <= 0) this.pending.delete(key);
      this.making.set(key, (this.making.get(key) ?? 0) + 1);
      const job: Promise<void> = this.makeOne(key, want.spec).finally(() => {
        this.making.set(key, (this.making.get(key) ?? 1) - 1);
        this.inFlight.delete(job);
        this.pump();
      });
      this.inFlight.add(job);
    }
  }

  private async makeOne(key: string, spec: S): Promise<void> {
    if (!this.enabled || (this.failures.get(key) ?? 0) >= MAX_FAILURES) return;
    let entry: E;
    try {
      entry = await this.opts.make(spec);
    } catch (err) {
      this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
      this.opts.onError?.(err as Error, key);
      return;
    }
    this.failures.delete(key);
    if (!this.enabled) return entry.discard(); // closed meanwhile: close() waits for this removal too
    const it: Idle<E> = { key, entry, timer: setTimeout(() => this.expire(it), this.opts.idleMs) };
    it.timer.unref();
    this.idle.push(it);
    while (this.idle.length > this.opts.max) this.expire(this.idle[0]);
  }

  private expire(it: Idle<E>): void {
    const i = this.idle.indexOf(it);
    if (i < 0) return;
    this.idle.splice(i, 1);
    clearTimeout(it.timer);
    void it.entry.discard();
  }

  /** Discards every idle container and makes no more; waits for the makes in progress to finish. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    await Promise.all([...this.inFlight]);
    const all = this.idle;
    this.idle = [];
    for (const it of all) clearTimeout(it.timer);
    await Promise.all(all.map((it) => it.entry.discard()));
  }
}
