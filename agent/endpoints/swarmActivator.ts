/**
 * The activator of one endpoint on the Swarm engine. Its instances are the tasks of one replicated Swarm
 * service (agent/engine/swarmService.ts), and it scales by the service's replica count: up when the
 * requests in flight and held exceed `concurrency` per task (up to `max`), down to `min` (0 by default)
 * after `idle` with nothing in flight. Requests are held and dispatched as on a Docker engine
 * (agent/endpoints/activator.ts): to a ready task with room, in the order they came, 503 past the hold
 * limit, 502 with Swarm's reason when the tasks cannot start.
 *
 * Where Swarm differs, and why:
 * - No per-instance stop: a scale-down lets Swarm choose which tasks go, so it could pick one with requests
 *   in flight. The endpoint therefore scales down only once nothing is in flight on any task for `idle`,
 *   and then to `min` at once; while requests flow it keeps every task it has.
 * - No hot start: every task is a new container Swarm creates on its node (a `warm` start: the image is
 *   built; a node that never ran it pulls it from the registry first).
 * - Tasks are followed by polling the manager (every `pollMs`), so a task's start and end are seen up to
 *   that much late; a task that exits is replaced by Swarm itself (restart condition any).
 * - Swarm's routing mesh is not used: each request goes to the task the activator picked, through the
 *   endpoint's gateway (see swarmService.ts), so per-task concurrency is counted as on a Docker engine.
 */
import type { Logger } from 'pino';
import type { CostBreakdown, EndpointSummary } from '../protocol';
import type { Run } from '../runs/run';
import { endpointKeyOf, serviceName, type ServiceTask, type SwarmServices } from '../engine/swarmService';
import { Instance, Refusal, type Slot } from './activator';
import type { EndpointDefinition } from './definitionStore';
import { leastBusy, type EndpointActivator } from './endpointActivator';
import { probeOverRelay, readyOverRelay } from './relayProbe';

export interface SwarmActivatorOptions {
  services: SwarmServices;
  log: Logger;
  agentId: string;
  pidsLimit?: number;
  /** The tasks may reach outside their network. */
  egress: boolean;
  holdMs?: number;
  queueMax?: number;
  pollMs?: number;
  onInstances(): void;
  /** What a task's running time cost, at the agent's prices. */
  costOf(ms: number): CostBreakdown;
  onSpent?(cost: CostBreakdown): void;
}

/** One task of the service as an instance: its id is the task's, in the shape of a run id. */
class TaskInstance extends Instance {
  constructor(port: number, readonly taskId: string) {
    super(port);
  }

  override get runId(): string {
    return `r-${this.taskId.toLowerCase()}`;
  }
}

interface Waiter {
  grant(slot: Slot): void;
  refuse(r: Refusal): void;
}

const TERMINAL = new Set(['complete', 'failed', 'shutdown', 'rejected', 'orphaned', 'remove']);

export class SwarmActivator implements EndpointActivator {
  private readonly instances = new Map<string, TaskInstance>();
  private readonly queue: Waiter[] = [];
  private readonly key: string;
  private readonly name: string;
  private service?: Promise<string>;
  /** Replicas asked of Swarm. */
  private desired = 0;
  /** A scale-down is under way to this many: no task takes a request until Swarm has picked the ones to stop. */
  private downTo?: number;
  private scaledUpAt = Date.now();
  private updates: Promise<void> = Promise.resolve();
  private poller?: NodeJS.Timeout;
  private polling = false;
  private idleTimer?: NodeJS.Timeout;
  private retired = false;
  private closed = false;
  private successor?: EndpointActivator;
  private predecessor?: { activator: EndpointActivator; retire: () => void };
  /** Why Swarm keeps a wanted task waiting (no node with room, an image to pull), while it does. */
  private waitingWhy?: string;
  /** Tasks that were ready once: one of those that fails has crashed, it did not fail to start. */
  private readonly everReady = new Set<string>();
  /** Failed tasks already reported to held requests. */
  private readonly failedSeen = new Set<string>();

  constructor(readonly def: EndpointDefinition, private readonly opts: SwarmActivatorOptions) {
    this.key = endpointKeyOf(def.tenant, def.name);
    this.name = serviceName(this.key, Date.parse(def.createdAt).toString(36));
  }

  get holdMs(): number {
    return this.opts.holdMs ?? 60_000;
  }

  /** The service's name on the Swarm (the endpoints keep it when cleaning up after a restart). */
  get serviceName(): string {
    return this.name;
  }

  get endpointKey(): string {
    return this.key;
  }

  acquire(signal?: AbortSignal): Promise<Slot> {
    if (this.retired) {
      if (this.successor) return this.successor.acquire(signal);
      return Promise.reject(new Refusal(404, `no endpoint ${this.def.name} on this agent`));
    }
    const free = this.freeInstance();
    if (free) return Promise.resolve(this.take(free));
    if (this.predecessor) return this.predecessor.activator.acquire(signal);
    const queueMax = this.opts.queueMax ?? 1000;
    if (this.queue.length >= queueMax) {
      return Promise.reject(new Refusal(503, `endpoint ${this.def.name} holds ${queueMax} requests already; retry later`, 1));
    }
    return new Promise<Slot>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.queue.indexOf(w);
        if (i >= 0) this.queue.splice(i, 1);
      };
      const w: Waiter = {
        grant: (slot) => { done(); resolve(slot); },
        refuse: (r) => { done(); reject(r); },
      };
      const onAbort = () => w.refuse(new Refusal(499, 'the client left while its request was held'));
      signal?.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(() => w.refuse(new Refusal(503,
        `no task of endpoint ${this.def.name} could take the request within ${Math.round(this.holdMs / 1000)} s` +
          (this.waitingWhy ? ` (Swarm: ${this.waitingWhy})` : ''), 5)), this.holdMs);
      this.queue.push(w);
      this.scale();
    });
  }

  ensureMin(): void {
    void this.serviceId().then(() => this.scale(), () => {});
  }

  /** Nothing to adopt by run: the service outlives the agent, and its running tasks are taken up when it is found. */
  adopt(_runs: Run[]): void {}

  hasReady(): boolean {
    return [...this.instances.values()].some((i) => i.state === 'ready');
  }

  takeOver(old: EndpointActivator, retire: () => void): void {
    if (!old.hasReady()) return retire();
    this.predecessor = { activator: old, retire };
    void this.serviceId().then(() => this.setReplicas(Math.max(1, this.desired)), () => {});
  }

  retire(next?: EndpointActivator): void {
    this.retired = true;
    this.successor = next;
    clearTimeout(this.idleTimer);
    for (const w of [...this.queue]) {
      if (next) next.acquire().then((s) => w.grant(s), (r: Refusal) => w.refuse(r));
      else w.refuse(new Refusal(404, `no endpoint ${this.def.name} on this agent`));
    }
    this.drainThenRemove();
  }

  instanceRuns(): string[] {
    return [...this.instances.values()].filter((i) => !i.gone).map((i) => i.runId);
  }

  summary(): Pick<EndpointSummary, 'instances' | 'queued'> {
    return {
      instances: [...this.instances.values()].map((i) => ({
        runId: i.runId, state: i.state, inFlight: i.inFlight,
        ...(i.start ? { start: i.start } : {}), ...(i.startedAt ? { startedAt: i.startedAt.toISOString() } : {}),
      })),
      queued: this.queue.length,
    };
  }

  /** The agent stops: held requests get 503 and the service goes to 0 (a restarted agent brings `min` back). */
  async close(): Promise<void> {
    this.closed = true;
    this.retired = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.poller);
    for (const w of [...this.queue]) w.refuse(new Refusal(503, 'the agent is shutting down', 5));
    for (const i of this.instances.values()) this.settle(i, 'the agent stopped');
    if (!this.service) return;
    this.desired = 0;
    await this.updates;
    await this.service.then((id) => this.opts.services.scale(id, 0)).catch((err) =>
      this.opts.log.warn({ endpoint: this.def.name, err: (err as Error).message }, 'could not scale the endpoint\'s Swarm service to 0'));
  }

  private serviceId(): Promise<string> {
    this.service ??= (async () => {
      const id = await this.opts.services.ensure({
        endpointKey: this.key, version: this.name.slice(this.name.lastIndexOf('-') + 1), endpoint: this.def.name, agentId: this.opts.agentId,
        image: this.def.image, spec: this.def.spec, port: this.def.settings.port, pidsLimit: this.opts.pidsLimit, egress: this.opts.egress,
      });
      // A service a previous agent left: its replicas are taken up, and scaled down after `idle` as any.
      this.desired = await this.opts.services.replicas(id);
      if (this.desired > 0) this.poll();
      return id;
    })();
    this.service.catch((err) => {
      this.service = undefined;
      this.failHeld(`could not make the endpoint's Swarm service: ${(err as Error).message}`);
    });
    return this.service;
  }

  private freeInstance(): TaskInstance | undefined {
    if (this.downTo !== undefined) return undefined;
    return leastBusy(this.instances.values(), this.def.settings.concurrency);
  }

  private take(inst: TaskInstance): Slot {
    // One idle timer for the whole service (Swarm scales replicas, not chosen tasks).
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    return inst.take(() => {
      this.dispatch();
      this.idleSoon();
      if (this.retired) this.drainThenRemove();
    });
  }

  private dispatch(): void {
    while (this.queue.length) {
      const free = this.freeInstance();
      if (!free) break;
      this.queue[0].grant(this.take(free));
    }
  }

  private inFlight(): number {
    let n = 0;
    for (const i of this.instances.values()) n += i.inFlight;
    return n;
  }

  private scale(): void {
    if (this.retired) return;
    const { concurrency, max, min } = this.def.settings;
    const wanted = Math.min(max, Math.max(min, Math.ceil((this.inFlight() + this.queue.length) / concurrency)));
    if (wanted > this.desired || (this.downTo !== undefined && wanted > this.downTo)) this.setReplicas(wanted);
    else if (this.desired < min) this.setReplicas(min);
  }

  /** Asks Swarm for `n` replicas; updates go one after another, each with the count wanted when it goes. */
  private setReplicas(n: number): void {
    if (n > this.desired) this.scaledUpAt = Date.now();
    if (this.downTo !== undefined && n > this.downTo) this.downTo = undefined;
    this.desired = n;
    this.updates = this.updates.then(async () => {
      const id = await this.serviceId();
      if (this.closed) return;
      await this.opts.services.scale(id, this.desired);
      this.opts.log.info({ endpoint: this.def.name, replicas: this.desired }, 'endpoint service scaled');
    }).catch((err) => this.failHeld(`could not scale the endpoint's Swarm service: ${(err as Error).message}`));
    this.poll();
  }

  /** Follows the service's tasks while any is wanted or known. */
  private poll(): void {
    if (this.polling || this.closed) return;
    this.polling = true;
    const tick = async () => {
      try {
        await this.reconcile();
      } catch (err) {
        this.opts.log.warn({ endpoint: this.def.name, err: (err as Error).message }, 'could not read the endpoint\'s Swarm tasks');
      }
      if (this.closed || (this.desired === 0 && this.instances.size === 0 && this.downTo === undefined)) {
        this.polling = false;
        return;
      }
      this.poller = setTimeout(() => void tick(), this.opts.pollMs ?? 250);
    };
    void tick();
  }

  private async reconcile(): Promise<void> {
    const id = await this.serviceId();
    const tasks = await this.opts.services.tasks(id, this.key);
    const known = new Set(tasks.map((t) => t.id));
    for (const seen of [this.everReady, this.failedSeen]) for (const taskId of seen) if (!known.has(taskId)) seen.delete(taskId);
    this.waitingWhy = tasks.find((t) => t.wanted && t.state === 'pending' && t.error)?.error;
    const live = new Map<string, ServiceTask>();
    for (const t of tasks) if (t.state === 'running' && t.wanted && t.address) live.set(t.id, t);
    for (const inst of [...this.instances.values()]) {
      if (!live.has(inst.taskId)) this.ended(inst, tasks.find((t) => t.id === inst.taskId));
    }
    if (this.downTo !== undefined && tasks.filter((t) => t.wanted && !TERMINAL.has(t.state)).length <= this.downTo) {
      // Swarm has picked the tasks that stop: those it keeps take requests again.
      this.downTo = undefined;
      for (const i of this.instances.values()) if (i.state === 'stopping' && live.has(i.taskId) && i.target) i.state = 'ready';
      this.dispatch();
      this.idleSoon();
    }
    for (const t of live.values()) {
      if (this.instances.has(t.id)) continue;
      const inst = new TaskInstance(this.def.settings.port, t.id);
      inst.start = 'warm';
      inst.startedAt = t.since;
      this.instances.set(t.id, inst);
      this.opts.onInstances();
      void this.bringUp(inst, t);
    }
    // A task that could not start since the last scale-up, with none ready: the held requests learn why
    // (after a crash of a task that served, they wait for the replacement Swarm starts).
    const failed = tasks.find((t) => (t.state === 'failed' || t.state === 'rejected') && t.since.getTime() >= this.scaledUpAt - 1000 &&
      !this.failedSeen.has(t.id) && !this.everReady.has(t.id));
    if (failed) {
      this.failedSeen.add(failed.id);
      if (!this.hasReady()) this.failHeld(`the endpoint's Swarm task could not start: ${failed.error ?? failed.state}`);
    }
  }

  /** Waits until the task's port (and ready path) answer through the gateway, then lets requests in. */
  private async bringUp(inst: TaskInstance, task: ServiceTask): Promise<void> {
    const { port, readyPath } = this.def.settings;
    const dial = (p: number) => this.opts.services.dial(this.key, task.address!, p);
    const target = { dial, probe: (p: number) => probeOverRelay(dial, p), startedAt: task.since };
    const running = Date.now();
    for (;;) {
      if (inst.gone || this.closed) return;
      if ((await target.probe(port)) && (!readyPath || (await readyOverRelay(dial, port, readyPath)))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (inst.gone || this.closed) return;
    inst.target = target;
    this.everReady.add(task.id);
    inst.wake = { start: 'warm', admitMs: 0, startMs: Math.max(0, task.since.getTime() - this.scaledUpAt), readyMs: Date.now() - running };
    if (this.downTo !== undefined) {
      inst.state = 'stopping';
      return;
    }
    inst.state = 'ready';
    this.opts.log.info({ endpoint: this.def.name, task: task.id, wake: inst.wake }, 'endpoint task ready');
    this.handedOver();
    if (this.retired) return this.drainThenRemove();
    this.dispatch();
    this.idleSoon();
  }

  private handedOver(): void {
    const p = this.predecessor;
    this.predecessor = undefined;
    p?.retire();
  }

  private ended(inst: TaskInstance, task: ServiceTask | undefined): void {
    // A task that exits is failed (or complete) whatever Swarm wants of it next; one Swarm stops is shutdown.
    const exited = task && (task.state === 'failed' || task.state === 'complete' || task.state === 'rejected');
    const why = !task ? 'its Swarm task is gone'
      : exited ? `its Swarm task ended (${task.state}${task.error ? `: ${task.error}` : ''}); Swarm starts another`
      : task.wanted ? `its Swarm task is ${task.state}` : 'Swarm stopped its task (scaled down)';
    if (inst.state !== 'stopping') this.opts.log.warn({ endpoint: this.def.name, task: inst.taskId, why }, 'endpoint task ended');
    this.settle(inst, why);
    this.instances.delete(inst.taskId);
    this.opts.onInstances();
    // Swarm starts a replacement for a task that exited; held requests wait for it.
  }

  private settle(inst: TaskInstance, why: string): void {
    if (inst.settled) return;
    inst.settled = true;
    inst.markEnded(why);
    if (inst.startedAt) this.opts.onSpent?.(this.opts.costOf(Date.now() - inst.startedAt.getTime()));
  }

  /** Nothing in flight and nothing held: after `idle`, the service goes down to `min`. */
  private idleSoon(): void {
    if (this.retired || this.inFlight() > 0 || this.queue.length > 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.retired || this.inFlight() > 0 || this.queue.length > 0 || this.desired <= this.def.settings.min) return;
      this.opts.log.info({ endpoint: this.def.name, idleMs: this.def.settings.idleMs, to: this.def.settings.min }, 'endpoint idle: scaling its Swarm service down');
      this.downTo = this.def.settings.min;
      for (const i of this.instances.values()) i.state = 'stopping';
      this.setReplicas(this.def.settings.min);
    }, this.def.settings.idleMs);
    this.idleTimer.unref();
  }

  /** Held requests, with no task coming for them, get 502 with the reason. */
  private failHeld(why: string): void {
    this.opts.log.warn({ endpoint: this.def.name, err: why }, 'endpoint on Swarm cannot serve');
    for (const w of [...this.queue]) w.refuse(new Refusal(502, why));
  }

  /** Retired: once nothing is in flight, the service goes (and, with no successor, its network and gateway). */
  private drainThenRemove(): void {
    if (this.inFlight() > 0 || this.closed) return;
    this.closed = true;
    clearTimeout(this.poller);
    for (const i of this.instances.values()) this.settle(i, 'endpoint redeployed or removed');
    this.instances.clear();
    const last = !this.successor;
    void (async () => {
      await this.updates;
      if (this.service) await this.opts.services.remove(await this.service);
      if (last) await this.opts.services.removeEndpoint(this.key);
    })().catch((err) => this.opts.log.warn({ endpoint: this.def.name, err: (err as Error).message }, 'could not remove the endpoint\'s Swarm service'))
      .finally(() => this.opts.onInstances());
  }
}
