/**
 * First-come, first-served admission by the host's capacity: a run waits until the vCPUs, memory and GPUs
 * it asked for are free. The head of the queue is never overtaken, so a large run is not starved by a
 * stream of small ones.
 */
import type { HardwareRequest } from '../protocol';

export interface Capacity {
  cpus: number;
  memoryMiB: number;
  gpus: Record<string, number>;
}

interface Waiter {
  req: HardwareRequest;
  grant(): void;
  reject(err: Error): void;
  onPosition(position: number): void;
}

export class CapacityQueue {
  private free: Capacity;
  private readonly waiting: Waiter[] = [];

  constructor(total: Capacity) {
    this.free = { cpus: total.cpus, memoryMiB: total.memoryMiB, gpus: { ...total.gpus } };
  }

  get length(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with a release function once the request fits. `onPosition` is told the run's place in line
   * (1 = next) whenever it changes while it waits; it is not called when the request fits at once.
   */
  acquire(req: HardwareRequest, onPosition: (position: number) => void, signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.give(req, +1);
        this.drain();
      };
      const waiter: Waiter = { req, grant: () => resolve(release), reject, onPosition };
      if (this.waiting.length === 0 && this.fits(req)) {
        this.give(req, -1);
        resolve(release);
        return;
      }
      this.waiting.push(waiter);
      onPosition(this.waiting.length);
      signal?.addEventListener('abort', () => {
        const i = this.waiting.indexOf(waiter);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
        this.announce(i);
        this.drain();
      }, { once: true });
    });
  }

  private fits(req: HardwareRequest): boolean {
    const gpuOk = !req.gpu || (this.free.gpus[req.gpu.type] ?? 0) >= req.gpu.count;
    // A small epsilon: fractional vCPUs added and taken back must not leave 1.9999999 of 2.
    return this.free.cpus + 1e-9 >= req.cpus && this.free.memoryMiB >= req.memoryMiB && gpuOk;
  }

  private give(req: HardwareRequest, sign: 1 | -1): void {
    this.free.cpus += sign * req.cpus;
    this.free.memoryMiB += sign * req.memoryMiB;
    if (req.gpu) this.free.gpus[req.gpu.type] = (this.free.gpus[req.gpu.type] ?? 0) + sign * req.gpu.count;
  }

  private drain(): void {
    let granted = 0;
    while (this.waiting.length && this.fits(this.waiting[0].req)) {
      const w = this.waiting.shift()!;
      this.give(w.req, -1);
      w.grant();
      granted++;
    }
    if (granted) this.announce(0);
  }

  private announce(from: number): void {
    for (let i = from; i < this.waiting.length; i++) this.waiting[i].onPosition(i + 1);
  }
}
