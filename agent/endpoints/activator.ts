/**
 * The activator of one endpoint: owns its instances (each one a run of the endpoint's image, so it gets the
 * same limits, hot pool, journal and restart recovery as any run) and decides which request goes where.
 *
 * A request asks for a slot. A ready instance with fewer than `concurrency` requests in flight gives one at
 * once; otherwise the request is held in a bounded queue, and instances are started while the requests in
 * flight and held exceed `concurrency` per instance, up to `max`. A new instance is ready once its port
 * accepts a connection (and `readyPath` answers 2xx); the held requests then go to it in the order they
 * came. A request held past `holdMs` is answered 503 with Retry-After, never left hanging. An instance
 * with nothing in flight for `idleMs` is stopped (the run is cancelled: SIGTERM, grace, SIGKILL), down to
 * `min`. Open WebSockets and streamed responses hold their slot until they close, so they count as in flight.
 */
import type { Logger } from 'pino';
import type { RunSpec, EndpointSummary, FinalEvent } from '../protocol';
import { isFinal } from '../protocol';
import type { Run } from '../runs/run';
import type { EndpointDefinition } from './definitionStore';
import { leastBusy, type EndpointActivator } from './endpointActivator';
import { readyOverRelay } from './relayProbe';
import { Instance, type Slot } from './instance';

export { Instance, type Slot, type WakeTiming } from './instance';

/** What the activator needs of the run lifecycle (RunManager has it). */
export interface InstanceRuns {
  create(spec: RunSpec, tenant: string): Promise<Run>;
  cancel(run: Run): void;
  get(runId: string): Run | undefined;
  prewarm(spec: RunSpec, tenant: string, image: string): void;
}

/** A request the activator answers itself (no instance could take it). */
export class Refusal extends Error {
  constructor(readonly status: number, message: string, readonly retryAfterS?: number) {
    super(message);
  }
}

interface Waiter {
  arrived: number;
  grant(slot: Slot): void;
  refuse(r: Refusal): void;
  timer?: NodeJS.Timeout;
}

export interface ActivatorOptions {
  runs: InstanceRuns;
  log: Logger;
  /** How long a request is held waiting for an instance before it gets 503 (default 60 s). */
  holdMs?: number;
  /** Most requests held at once (default 1000); one more gets 503 at once. */
  queueMax?: number;
  /** The instances changed: their run ids are kept with the definition. */
  onInstances(): void;
  /** An instance's run ended, with what it cost (called once per instance). */
  onSpent?(cost: FinalEvent['cost']): void;
}

const READY_POLL_MS = 20;
/** A new instance that is not ready in this long is given up (its held requests keep waiting for another). */
const READY_TIMEOUT_MS = 5 * 60_000;

export class Activator implements EndpointActivator {
  private readonly instances: Instance[] = [];
  private readonly queue: Waiter[] = [];
  private retired = false;
  /** Where held requests go after a redeploy or a removal. */
  private successor?: EndpointActivator;
  /** The endpoint this one replaces, serving until this one has an instance ready (`takeOver`). */
  private predecessor?: { activator: EndpointActivator; retire: () => void };

  constructor(readonly def: EndpointDefinition, private readonly opts: ActivatorOptions) {}

  get holdMs(): number {
    return this.opts.holdMs ?? 60_000;
  }

  /**
   * A redeploy under load: `old` keeps serving what it has ready until this endpoint's first instance is
   * ready (one is started now, whatever `min` says), then it is retired into this one. Without that, every
   * request of the redeploy would wait for a new instance to start, and past the hold limit get 503.
   */
  takeOver(old: EndpointActivator, retire: () => void): void {
    if (!old.hasReady()) return retire();
    this.predecessor = { activator: old, retire };
    if (!this.instances.some((i) => i.state !== 'stopping')) void this.startInstance();
  }

  hasReady(): boolean {
    return this.instances.some((i) => i.state === 'ready');
  }

  /** The predecessor is done with: it stops taking requests, and what it holds comes here. */
  private handedOver(): void {
    const p = this.predecessor;
    this.predecessor = undefined;
    p?.retire();
  }

  /** A slot on an instance for one request: at once, or once one is free or started. */
  acquire(signal?: AbortSignal): Promise<Slot> {
    if (this.retired) {
      if (this.successor) return this.successor.acquire(signal);
      return Promise.reject(new Refusal(404, `no endpoint ${this.def.name} on this agent`));
    }
    const free = this.freeInstance();
    if (free) return Promise.resolve(this.take(free));
    // Until this one has an instance ready, the endpoint it replaces answers.
    if (this.predecessor) return this.predecessor.activator.acquire(signal);
    const queueMax = this.opts.queueMax ?? 1000;
    if (this.queue.length >= queueMax) {
      return Promise.reject(new Refusal(503, `endpoint ${this.def.name} holds ${queueMax} requests already; retry later`, 1));
    }
    return new Promise<Slot>((resolve, reject) => {
      const w: Waiter = {
        arrived: Date.now(),
        grant: (slot) => {
          clearTimeout(w.timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        refuse: (r) => {
          clearTimeout(w.timer);
          signal?.removeEventListener('abort', onAbort);
          reject(r);
        },
      };
      const onAbort = () => {
        this.unqueue(w);
        w.refuse(new Refusal(499, 'the client left while its request was held'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      w.timer = setTimeout(() => {
        this.unqueue(w);
        w.refuse(new Refusal(503, `no instance of endpoint ${this.def.name} could take the request within ${Math.round(this.holdMs / 1000)} s`, 5));
      }, this.holdMs);
      this.queue.push(w);
      this.scale();
    });
  }

  /** Keeps `min` instances running (at deploy and after a restart). */
  ensureMin(): void {
    this.scale();
  }

  /** Takes up instances a previous agent process left running (their runs were recovered by the run manager). */
  adopt(runs: Run[]): void {
    for (const run of runs) {
      const inst = new Instance(this.def.settings.port);
      inst.run = run;
      this.instances.push(inst);
      this.opts.log.info({ endpoint: this.def.name, runId: run.id }, 'adopting an endpoint instance left by the previous agent');
      void this.bringUp(inst, Date.now(), true);
    }
  }

  /**
   * No new requests (they go to `next` after a redeploy, or get 404 after a removal); held ones go there
   * too, and the instances stop once what they hold has finished.
   */
  retire(next?: EndpointActivator): void {
    this.retired = true;
    this.successor = next;
    for (const w of this.queue.splice(0)) {
      if (next) next.acquire().then((s) => w.grant(s), (r: Refusal) => w.refuse(r));
      else w.refuse(new Refusal(404, `no endpoint ${this.def.name} on this agent`));
    }
    for (const inst of [...this.instances]) if (inst.inFlight === 0 || inst.state === 'starting') this.stop(inst, 'endpoint redeployed or removed');
  }

  /** Run ids of the instances not yet ended. */
  instanceRuns(): string[] {
    return this.instances.flatMap((i) => (i.run && !i.gone ? [i.run.id] : []));
  }

  /** The images in use by this endpoint (never removed by the image budget). */
  summary(): Pick<EndpointSummary, 'instances' | 'queued'> {
    return {
      instances: this.instances.filter((i) => i.run).map((i) => ({
        runId: i.run!.id, state: i.state, inFlight: i.inFlight,
        ...(i.start ? { start: i.start } : {}), ...(i.startedAt ? { startedAt: i.startedAt.toISOString() } : {}),
      })),
      queued: this.queue.length,
    };
  }

  /** The agent is stopping: held requests get 503; instances are stopped by the run manager's shutdown. */
  close(): void {
    this.retired = true;
    for (const w of this.queue.splice(0)) w.refuse(new Refusal(503, 'the agent is shutting down', 5));
    for (const i of this.instances) clearTimeout(i.idleTimer);
  }

  private freeInstance(): Instance | undefined {
    return leastBusy(this.instances, this.def.settings.concurrency);
  }

  private take(inst: Instance): Slot {
    clearTimeout(inst.idleTimer);
    inst.idleTimer = undefined;
    return inst.take(() => {
      this.dispatch();
      if (inst.inFlight === 0) this.idle(inst);
    });
  }

  private unqueue(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Held requests go, in order, to ready instances with room. */
  private dispatch(): void {
    while (this.queue.length) {
      const free = this.freeInstance();
      if (!free) break;
      this.queue.shift()!.grant(this.take(free));
    }
  }

  /** Starts instances while in-flight and held requests exceed `concurrency` per instance (up to `max`), or fewer than `min` run. */
  private scale(): void {
    if (this.retired) return;
    const { concurrency, max, min } = this.def.settings;
    const live = this.instances.filter((i) => i.state !== 'stopping');
    const demand = live.reduce((n, i) => n + i.inFlight, 0) + this.queue.length;
    const wanted = Math.min(max, Math.max(min, Math.ceil(demand / concurrency)));
    for (let n = live.length; n < wanted; n++) void this.startInstance();
  }

  private async startInstance(): Promise<void> {
    const t0 = Date.now();
    const inst = new Instance(this.def.settings.port);
    this.instances.push(inst);
    const { tenant, name } = this.def;
    try {
      const run = await this.opts.runs.create(instanceSpec(this.def), tenant);
      inst.run = run;
      this.opts.onInstances();
      if (!run.warmImage) {
        // The agent lost the image (removed by hand): a run would wait for a context no one sends.
        this.opts.runs.cancel(run);
        throw new Error(`the image of endpoint ${name} is no longer on the engine: deploy it again`);
      }
      // Retired while it was being created: it stops at once, and is forgotten when its run ends.
      if (this.retired || inst.state === 'stopping') {
        inst.state = 'stopping';
        this.opts.runs.cancel(run);
      }
      await this.bringUp(inst, t0, false);
    } catch (err) {
      this.failStart(inst, (err as Error).message);
    }
  }

  /** Follows an instance's run until its port (and ready path) answer, then lets requests in. */
  private async bringUp(inst: Instance, t0: number, adopted: boolean): Promise<void> {
    const run = inst.run!;
    let tStarting = t0;
    let tRunning = t0;
    const off = run.follow(adopted ? run.lastSeq : 0, (_seq, e) => {
      if (e.kind === 'starting') {
        inst.start = e.start;
        tStarting = Date.now();
      } else if (e.kind === 'running') {
        tRunning = Date.now();
        inst.startedAt = new Date(e.startedAt);
      } else if (isFinal(e)) {
        off();
        this.settle(inst, e);
        this.ended(inst, endedWhy(e));
      }
    });
    if (run.done) {
      off();
      this.settle(inst, run.final!);
      this.ended(inst, endedWhy(run.final!));
      return;
    }
    try {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      const port = this.def.settings.port;
      // Polled rather than told: the same wait serves a new run and one recovered after a restart.
      for (;;) {
        if (inst.gone || stopping(inst)) return;
        if (Date.now() > deadline) throw new Error(`the instance was not ready after ${READY_TIMEOUT_MS / 1000} s`);
        // An engine whose ports the agent cannot reach never becomes ready: say so now, not after the timeout.
        if (run.ports.unreachable) throw new Error(run.ports.unreachable);
        const target = run.ports.target(0);
        if (target && (await target.probe(port).catch(() => false))) {
          if (!this.def.settings.readyPath || (await readyOverRelay((p) => target.dial(p), port, this.def.settings.readyPath))) {
            inst.target = target;
            break;
          }
        }
        await new Promise((r) => setTimeout(r, READY_POLL_MS));
      }
    } catch (err) {
      this.failStart(inst, (err as Error).message);
      return;
    }
    if (inst.gone || stopping(inst)) return;
    if (adopted) {
      inst.start ??= 'warm';
      inst.startedAt ??= run.ports.target(0)?.startedAt;
    } else {
      inst.wake = { start: inst.start ?? 'warm', admitMs: Math.max(0, tStarting - t0), startMs: Math.max(0, tRunning - tStarting), readyMs: Math.max(0, Date.now() - tRunning) };
    }
    inst.state = 'ready';
    this.opts.log.info({ endpoint: this.def.name, runId: run.id, wake: inst.wake, adopted }, 'endpoint instance ready');
    this.handedOver();
    if (this.retired) {
      this.stop(inst, 'endpoint redeployed or removed');
      return;
    }
    this.dispatch();
    if (inst.inFlight === 0) this.idle(inst);
  }

  /** An instance that could not start: with no other instance coming, the held requests learn why (502). */
  private failStart(inst: Instance, why: string): void {
    this.opts.log.warn({ endpoint: this.def.name, runId: inst.runId, err: why }, 'endpoint instance did not start');
    // The new version cannot start: the old one is retired all the same (a redeploy is not undone), and
    // requests learn why from this one.
    this.handedOver();
    if (inst.run && !inst.run.done) this.opts.runs.cancel(inst.run);
    this.forget(inst, why);
    if (!this.instances.some((i) => i.state !== 'stopping')) {
      for (const w of this.queue.splice(0)) w.refuse(new Refusal(502, `the endpoint's instance could not start: ${why}`));
    }
  }

  /** Passes an instance's final cost on, once however its end was seen. */
  private settle(inst: Instance, final: FinalEvent): void {
    if (inst.settled) return;
    inst.settled = true;
    this.opts.onSpent?.(final.cost);
  }

  private ended(inst: Instance, why: string): void {
    if (inst.gone && !this.instances.includes(inst)) return;
    const wasStarting = inst.state === 'starting';
    if (inst.state !== 'stopping') this.opts.log.warn({ endpoint: this.def.name, runId: inst.runId, why }, 'endpoint instance ended');
    if (wasStarting) return this.failStart(inst, why);
    this.forget(inst, why);
    // Requests still held get a new instance: the next one starts now.
    this.scale();
  }

  private forget(inst: Instance, why: string): void {
    clearTimeout(inst.idleTimer);
    inst.markEnded(why);
    const i = this.instances.indexOf(inst);
    if (i >= 0) this.instances.splice(i, 1);
    this.opts.onInstances();
    // At zero, the next wake is hot when a container of this kind waits (the pool made one at the last start).
    if (!this.retired && this.instances.length === 0) this.opts.runs.prewarm(instanceSpec(this.def), this.def.tenant, this.def.image);
  }

  /** Nothing in flight: after `idleMs` the instance stops, unless that would leave fewer than `min`. */
  private idle(inst: Instance): void {
    if (this.retired && inst.state !== 'starting') return this.stop(inst, 'endpoint redeployed or removed');
    clearTimeout(inst.idleTimer);
    inst.idleTimer = setTimeout(() => {
      inst.idleTimer = undefined;
      if (inst.inFlight > 0 || inst.state !== 'ready') return;
      const live = this.instances.filter((i) => i.state !== 'stopping').length;
      if (live <= this.def.settings.min) return;
      this.stop(inst, `idle for ${this.def.settings.idleMs} ms`);
    }, this.def.settings.idleMs);
    inst.idleTimer.unref();
  }

  private stop(inst: Instance, why: string): void {
    if (inst.state === 'stopping') return;
    inst.state = 'stopping';
    clearTimeout(inst.idleTimer);
    this.opts.log.info({ endpoint: this.def.name, runId: inst.runId, why }, 'stopping endpoint instance');
    // Still being created: startInstance sees `stopping` once the run exists and cancels it then.
    if (inst.run) this.opts.runs.cancel(inst.run);
  }
}

/** The run an instance is: the endpoint's spec, warm (its image exists), watched on its port, named after it. */
export function instanceSpec(def: EndpointDefinition): RunSpec {
  const { buildOnly: _b, buildSecrets: _s, parallel: _p, noCache: _n, timeoutMs: _t, ...spec } = def.spec;
  return { ...spec, ports: [def.settings.port], name: instanceName(def.name) };
}

/** The name of an endpoint's instance runs: how a restarted agent tells them from other runs. */
export function instanceName(endpoint: string): string {
  return `endpoint ${endpoint}`;
}

/** Read through a call: the state changes while the wait for readiness awaits. */
function stopping(inst: Instance): boolean {
  return inst.state === 'stopping';
}

function endedWhy(e: FinalEvent): string {
  if (e.kind === 'exited') return `the instance exited with code ${e.exitCode}${e.oomKilled ? ' (out of memory)' : ''}`;
  if (e.kind === 'failed') return `the instance failed: ${e.message}`;
  return 'the instance was stopped';
}

