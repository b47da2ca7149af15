/**
 * One writer at a time, readers together: a run holds each of its volumes read-only (shared) or read-write
 * (alone) for as long as it runs. Requests are served first come, first served per volume, so a writer is not
 * starved by a stream of readers; a run with several volumes takes them all at once or waits.
 */
export interface LockRequest {
  /** What the lock is on (the volume's engine name). */
  key: string;
  /** The user's name for it, for the reasons given. */
  label: string;
  readOnly: boolean;
}

export interface Holder {
  runId: string;
  readOnly: boolean;
}

interface Waiter {
  runId: string;
  reqs: LockRequest[];
  grant(): void;
  reason?: string;
  onWait(reason: string): void;
}

export class VolumeLocks {
  private readonly held = new Map<string, Holder[]>();
  private readonly waiting: Waiter[] = [];

  /** The runs that hold `key` now. */
  holders(key: string): Holder[] {
    return [...(this.held.get(key) ?? [])];
  }

  /**
   * Resolves with a release function once every request can be held. While it waits `onWait` is told why
   * (naming the run in the way), again whenever the reason changes.
   */
  acquire(runId: string, reqs: LockRequest[], onWait: (reason: string) => void, signal?: AbortSignal): Promise<() => void> {
    const wanted = dedupe(reqs);
    return new Promise((resolve, reject) => {
      const release = this.releaser(runId, wanted);
      const waiter: Waiter = { runId, reqs: wanted, grant: () => resolve(release), onWait };
      // Behind everyone already waiting: a reader does not overtake a writer in line.
      if (this.blocker(waiter, this.waiting.length) === undefined) {
        this.take(waiter);
        resolve(release);
        return;
      }
      this.waiting.push(waiter);
      this.tell(waiter, this.waiting.length - 1);
      signal?.addEventListener('abort', () => {
        const i = this.waiting.indexOf(waiter);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
        this.drain();
      }, { once: true });
    });
  }

  /** Holds at once whatever else holds (a run an agent restart found running already has its mounts). */
  hold(runId: string, reqs: LockRequest[]): () => void {
    const wanted = dedupe(reqs);
    this.take({ runId, reqs: wanted, grant: () => {}, onWait: () => {} });
    return this.releaser(runId, wanted);
  }

  private releaser(runId: string, reqs: LockRequest[]): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const r of reqs) {
        const list = (this.held.get(r.key) ?? []).filter((h) => h.runId !== runId);
        if (list.length) this.held.set(r.key, list);
        else this.held.delete(r.key);
      }
      this.drain();
    };
  }

  private take(w: Waiter): void {
    for (const r of w.reqs) this.held.set(r.key, [...(this.held.get(r.key) ?? []), { runId: w.runId, readOnly: r.readOnly }]);
  }

  /** Why `w` (at `index` in line) cannot have its volumes now, or undefined when it can. */
  private blocker(w: Waiter, index: number): string | undefined {
    for (const r of w.reqs) {
      const writer = (this.held.get(r.key) ?? []).find((h) => !r.readOnly || !h.readOnly);
      if (writer) {
        return writer.readOnly
          ? `waiting for volume ${r.label}: run ${writer.runId} reads it, and a read-write mount has the volume to itself`
          : `waiting for volume ${r.label}: run ${writer.runId} writes it (one writer at a time; :ro mounts share)`;
      }
      for (const ahead of this.waiting.slice(0, index)) {
        const clash = ahead.reqs.find((a) => a.key === r.key && (!a.readOnly || !r.readOnly));
        if (clash) return `waiting for volume ${r.label}: run ${ahead.runId} is ahead in line for it`;
      }
    }
    return undefined;
  }

  private drain(): void {
    for (let i = 0; i < this.waiting.length;) {
      const w = this.waiting[i];
      if (this.blocker(w, i) === undefined) {
        this.waiting.splice(i, 1);
        this.take(w);
        w.grant();
      } else {
        this.tell(w, i);
        i++;
      }
    }
  }

  private tell(w: Waiter, index: number): void {
    const reason = this.blocker(w, index);
    if (reason && reason !== w.reason) {
      w.reason = reason;
      w.onWait(reason);
    }
  }
}

/** One request per key; read-write wins over read-only. */
function dedupe(reqs: LockRequest[]): LockRequest[] {
  const byKey = new Map<string, LockRequest>();
  for (const r of reqs) {
    const had = byKey.get(r.key);
    byKey.set(r.key, had ? { ...had, readOnly: had.readOnly && r.readOnly } : r);
  }
  return [...byKey.values()];
}
