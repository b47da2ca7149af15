/**
 * What an interactive run (`run -i`, `run -it`) has beside an ordinary one, while its container runs: its
 * process's stdin, the clients whose keystrokes reach it (`/stdin/RUN` sockets), the idle timeout, and the
 * grace period after the last client went: a terminal nobody is at is stopped, as it is only cost.
 */
import type { ContainerStdin } from './containerStdin';
import { IdleWatch } from './idleWatch';
import type { RunEvent } from '../protocol';

/** How long an interactive run waits for a client (again) before it is stopped. */
export const DEFAULT_GRACE_MS = 60_000;

/** Why an interactive run was stopped by the agent (not by a client's cancel): its final event says so. */
export class RunStopped extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunStopped';
  }
}

export interface InteractiveOptions {
  stdin: ContainerStdin;
  idleTimeoutMs: number;
  graceMs: number;
  emit(e: RunEvent): void;
  stop(reason: RunStopped): void;
}

export class InteractiveRun {
  private readonly idle: IdleWatch;
  private readonly clients = new Set<(code: number, reason: string) => void>();
  private grace?: NodeJS.Timeout;
  private over = false;

  constructor(private readonly o: InteractiveOptions) {
    this.idle = new IdleWatch(o.idleTimeoutMs, {
      warn: (idleMs, stopInMs) => o.emit({
        kind: 'idle', idleMs, stopInMs,
        message: `no input or output for ${seconds(idleMs)}: the run stops in ${seconds(stopInMs)} unless something is typed (--idle-timeout ${seconds(o.idleTimeoutMs)})`,
      }),
      stop: () => this.stop(new RunStopped(`stopped after ${seconds(o.idleTimeoutMs)} with no input or output (its --idle-timeout)`)),
    });
    this.waitForClient();
  }

  get tty(): boolean {
    return this.o.stdin.tty;
  }

  /** Output came from the program. */
  touch(): void {
    this.idle.touch();
  }

  /** False when the program's stdin is behind: the caller stops reading its client until `drained`. */
  write(bytes: Buffer): boolean {
    this.idle.touch();
    return this.o.stdin.write(bytes);
  }

  drained(cb: () => void): void {
    this.o.stdin.drained(cb);
  }

  end(): void {
    this.o.stdin.end();
  }

  resize(cols: number, rows: number): Promise<void> {
    return this.o.stdin.resize(cols, rows);
  }

  /** A client's socket is attached; `cut` closes it when the run ends. Returns its detach. */
  attach(cut: (code: number, reason: string) => void): () => void {
    if (this.over) {
      cut(1000, 'the run has ended');
      return () => {};
    }
    this.clients.add(cut);
    clearTimeout(this.grace);
    this.grace = undefined;
    return () => {
      if (!this.clients.delete(cut) || this.over) return;
      if (this.clients.size === 0) this.waitForClient();
    };
  }

  /** The container stopped: every client's socket is closed, no timer is left. */
  close(reason: string): void {
    if (this.over) return;
    this.over = true;
    this.idle.close();
    clearTimeout(this.grace);
    for (const cut of [...this.clients]) cut(1000, reason);
    this.clients.clear();
  }

  /**
   * Hangs up first, as a closed terminal does (a shell leaves at once on SIGHUP; SIGTERM, which an
   * interactive shell ignores, would wait out the whole stop grace), then stops the run as any stop does.
   */
  private stop(reason: RunStopped): void {
    this.o.stdin.end();
    void this.o.stdin.hangup().finally(() => this.o.stop(reason));
  }

  private waitForClient(): void {
    clearTimeout(this.grace);
    this.grace = setTimeout(() => {
      if (this.clients.size === 0 && !this.over) {
        this.stop(new RunStopped(`stopped: no client was attached to its stdin for ${seconds(this.o.graceMs)} (the connection was lost, and nobody attached again)`));
      }
    }, this.o.graceMs);
    this.grace.unref();
  }
}

function seconds(ms: number): string {
  if (ms >= 120_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}
