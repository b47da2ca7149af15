/**
 * The idle timeout of an interactive run: a shell nobody types into is cost with no use. Every byte in or
 * out is activity; after `timeoutMs` without any, the run is stopped, with one warning before (a minute
 * before, or halfway for a timeout of two minutes or less), which is not itself activity.
 */
export interface IdleWatchHandlers {
  warn(idleMs: number, stopInMs: number): void;
  stop(idleMs: number): void;
}

export class IdleWatch {
  private last = Date.now();
  private timer?: NodeJS.Timeout;
  private warned = false;
  private closed = false;
  readonly warnAtMs: number;

  constructor(readonly timeoutMs: number, private readonly on: IdleWatchHandlers) {
    this.warnAtMs = timeoutMs > 120_000 ? timeoutMs - 60_000 : Math.floor(timeoutMs / 2);
    this.arm();
  }

  /** Input or output just happened. Cheap: it only notes the time; the timer looks at it when it fires. */
  touch(): void {
    this.last = Date.now();
    this.warned = false;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private arm(): void {
    if (this.closed) return;
    const idle = Date.now() - this.last;
    const next = this.warned ? this.timeoutMs : this.warnAtMs;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next - idle));
    this.timer.unref();
  }

  private fire(): void {
    if (this.closed) return;
    const idle = Date.now() - this.last;
    if (idle >= this.timeoutMs) {
      this.closed = true;
      return this.on.stop(idle);
    }
    if (!this.warned && idle >= this.warnAtMs) {
      this.warned = true;
      this.on.warn(idle, this.timeoutMs - idle);
    }
    this.arm();
  }
}
