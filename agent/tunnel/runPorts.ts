/**
 * The ports side of one run: which of its containers are up (by task), the container ports clients said
 * they forward (watched until each first accepts a connection, then reported once with a `port` event),
 * and the tunnels open to them, which are cut with a reason when their container stops or the run ends.
 */
import type { Duplex } from 'node:stream';
import type { RunEvent } from '../protocol';
import { TUNNEL_CLOSE } from './pump';

/** A running container of the run, as far as ports go. */
export interface PortTarget {
  dial(port: number): Promise<Duplex>;
  probe(port: number): Promise<boolean>;
  /** When the run's program started: `port` events count from here. */
  startedAt: Date;
  /** A command inside the container (`bytenite exec`), which reaches the run the same way a tunnel does. */
  exec?: NonNullable<import('../engine/engine').RunningContainer['exec']>;
}

type Closer = (code: number, reason: string) => void;

/** Probe often at first (a small server is up in tens of milliseconds), then less and less. */
function probeDelay(sinceStartMs: number): number {
  return sinceStartMs < 2000 ? 20 : sinceStartMs < 30_000 ? 100 : 500;
}

export class RunPorts {
  private readonly live = new Map<number, PortTarget>();
  private readonly watched = new Set<number>();
  private readonly reported = new Set<string>();
  private readonly tunnels = new Map<Closer, number>();
  private readonly probing = new Map<number, NodeJS.Timeout | 'busy'>();
  /** Set once the run is over: why its ports can no longer be reached. */
  ended?: string;
  /** Set when the engine cannot reach its containers' ports at all: why (tunnels get 501 with it). */
  unreachable?: string;

  /** `fanOut`: events name their task. */
  constructor(private readonly emit: (e: RunEvent) => void, ports: readonly number[] = [], private readonly fanOut = false) {
    for (const p of ports) this.watched.add(p);
  }

  /** Watches more ports; a port already reported is not reported again. */
  watch(ports: readonly number[]): void {
    for (const p of ports) this.watched.add(p);
    for (const task of this.live.keys()) this.probeSoon(task, 0);
  }

  running(task: number, target: PortTarget): void {
    if (this.ended) return;
    this.live.set(task, target);
    this.probeSoon(task, 0);
  }

  /** The container of `task` stopped: its tunnels are cut. */
  stopped(task: number, why: string): void {
    this.live.delete(task);
    this.stopProbing(task);
    for (const [close, t] of [...this.tunnels]) {
      if (t !== task) continue;
      this.tunnels.delete(close);
      close(TUNNEL_CLOSE.runEnded, why);
    }
  }

  /** The run is over: every tunnel is cut, and no new one is let in. */
  end(why: string): void {
    this.ended ??= why;
    for (const task of [...this.live.keys()]) this.stopped(task, why);
    const rest = [...this.tunnels.keys()];
    this.tunnels.clear();
    for (const close of rest) close(TUNNEL_CLOSE.runEnded, why);
  }

  target(task: number): PortTarget | undefined {
    return this.live.get(task);
  }

  /** Registers an open tunnel to `task`'s container; returns its release. */
  track(task: number, close: Closer): () => void {
    this.tunnels.set(close, task);
    return () => this.tunnels.delete(close);
  }

  private pending(task: number): number[] {
    return [...this.watched].filter((p) => !this.reported.has(`${task}:${p}`));
  }

  private probeSoon(task: number, delay: number): void {
    if (this.probing.has(task) || this.pending(task).length === 0) return;
    this.probing.set(task, setTimeout(() => void this.probeRound(task), delay));
  }

  private stopProbing(task: number): void {
    const t = this.probing.get(task);
    if (t && t !== 'busy') clearTimeout(t);
    this.probing.delete(task);
  }

  private async probeRound(task: number): Promise<void> {
    const target = this.live.get(task);
    if (!target) return;
    this.probing.set(task, 'busy');
    const ports = this.pending(task);
    const up = await Promise.all(ports.map((p) => target.probe(p).catch(() => false)));
    if (this.live.get(task) !== target) return; // stopped meanwhile
    const ms = Math.max(0, Date.now() - target.startedAt.getTime());
    ports.forEach((port, i) => {
      if (!up[i] || this.reported.has(`${task}:${port}`)) return;
      this.reported.add(`${task}:${port}`);
      this.emit({ kind: 'port', ...(this.fanOut ? { task } : {}), port, state: 'ready', ms });
    });
    this.probing.delete(task);
    this.probeSoon(task, probeDelay(ms));
  }
}
