/**
 * The endpoints of an agent: their definitions (kept in the data folder), one activator each, and the
 * request journal of each. What the protocol session and the HTTP router see of endpoints is this class.
 *
 * Names are per tenant: a request with a tenant's token reaches that tenant's endpoint of the name; one
 * without a token reaches only a public endpoint, and a public name is unique on the agent (anyone can
 * call it, so there can be only one). Another tenant's private endpoint is not found, in the same words
 * as one that does not exist.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { EndpointSettings, EndpointSummary, RunSpec } from '../protocol';
import type { Engine } from '../engine/engine';
import { imageDigest, type RunManager } from '../runs/runManager';
import { Activator, instanceName, instanceSpec } from './activator';
import type { EndpointActivator } from './endpointActivator';
import { SwarmActivator } from './swarmActivator';
import { DefinitionStore, type EndpointDefinition } from './definitionStore';
import { RequestJournal } from './requestJournal';
import { CostLedger, idleWindow } from './endpointCost';
import { costOf } from '../cost/cost';
import type { PricingTable } from '../cost/pricing';

export class EndpointError extends Error {
  constructor(readonly code: 'not_found' | 'name_taken' | 'bad_message', message: string) {
    super(message);
  }
}

interface Entry {
  activator: EndpointActivator;
  journal: RequestJournal;
  /** Kept across redeploys, like the journal: it is the endpoint's, not one image's. */
  ledger: CostLedger;
}

export interface EndpointsOptions {
  runs: RunManager;
  engine: Engine;
  log: Logger;
  dataDir: string;
  /** How long a request is held for an instance before 503 (default 60 s). */
  holdMs?: number;
  /** Instances are billed as runs are, at the agent's prices. */
  pricing: PricingTable;
  /** As for runs: whether instances may reach the network, and their process limit (Swarm services). */
  network?: boolean;
  pidsLimit?: number;
}

export class Endpoints {
  private readonly byKey = new Map<string, Entry>();
  private readonly store: DefinitionStore;
  /** Activators replaced or removed that still drain their instances (their images stay meanwhile). */
  private readonly draining = new Set<EndpointActivator>();
  private closed = false;

  constructor(private readonly opts: EndpointsOptions) {
    this.store = new DefinitionStore(opts.dataDir);
  }

  /**
   * Serves the kept definitions again. Instances recorded as running whose runs the run manager recovered
   * are adopted; other endpoint instances still running (e.g. started just before a crash, not yet
   * recorded) are stopped. Then each endpoint is brought up to its `min`.
   */
  load(): void {
    const adopted = new Set<string>();
    for (const def of this.store.load((m) => this.opts.log.warn(m))) {
      const entry = this.entryFor(def);
      this.byKey.set(key(def.tenant, def.name), entry);
      const alive = def.instances.map((id) => this.opts.runs.get(id)).filter((r) => r && !r.done && r.tenant === def.tenant && r.spec.name === instanceName(def.name));
      for (const r of alive) adopted.add(r!.id);
      entry.activator.adopt(alive.map((r) => r!));
    }
    for (const run of this.opts.runs.list()) {
      if (!run.done && run.spec.name?.startsWith(instanceName('')) && !adopted.has(run.id)) {
        this.opts.log.info({ runId: run.id }, 'stopping an endpoint instance no endpoint holds');
        this.opts.runs.cancel(run);
      }
    }
    const services = this.opts.engine.endpointServices;
    if (services) {
      // Services of endpoints this agent no longer holds (undeployed while it was down, a lost data folder).
      const kept = [...this.byKey.values()].map((e) => e.activator as SwarmActivator);
      void services.removeOthers(this.opts.runs.agentId, new Set(kept.map((a) => a.endpointKey)), new Set(kept.map((a) => a.serviceName)))
        .catch((err) => this.opts.log.warn({ err: (err as Error).message }, 'could not remove endpoint services left on the Swarm'));
    }
    for (const { activator } of this.byKey.values()) activator.ensureMin();
    this.save();
  }

  /**
   * Registers or replaces `name`. A replaced endpoint with an instance ready answers until the new one has one;
   * then its held requests go to the new one, and its instances drain and stop.
   */
  async deploy(tenant: string, name: string, spec: RunSpec, settings: EndpointSettings): Promise<EndpointSummary> {
    if (this.closed) throw new EndpointError('bad_message', 'the agent is shutting down');
    if (settings.min > settings.max) throw new EndpointError('bad_message', `--min ${settings.min} is more than --max ${settings.max}`);
    if (settings.public) {
      for (const [k, e] of this.byKey) {
        if (e.activator.def.name === name && e.activator.def.settings.public && k !== key(tenant, name)) {
          throw new EndpointError('name_taken', `a public endpoint named ${name} exists on this agent already: choose another name`);
        }
      }
    }
    const swarmRefusal = await this.opts.engine.endpointServices?.refuse(spec);
    if (swarmRefusal) throw new EndpointError('bad_message', swarmRefusal);
    const image = await this.opts.engine.findImage(imageDigest(spec, tenant));
    if (!image) throw new EndpointError('not_found', `no image built from this context on the agent: build it first (bytenite deploy does, with a buildOnly run)`);
    const { buildOnly: _b, buildSecrets: _s, parallel: _p, ...kept } = spec;
    const old = this.byKey.get(key(tenant, name));
    const def: EndpointDefinition = {
      tenant, name, spec: kept, settings, image, instances: [],
      createdAt: new Date().toISOString(),
    };
    const entry = this.entryFor(def, old?.journal, old?.ledger);
    this.byKey.set(key(tenant, name), entry);
    // The old version serves until the new one has an instance ready: a redeploy under load holds nothing.
    if (old) entry.activator.takeOver(old.activator, () => this.retire(old.activator, entry.activator));
    this.save();
    this.opts.log.info({ tenant, endpoint: name, settings, image }, old ? 'endpoint redeployed' : 'endpoint deployed');
    // The first request wakes it hot: a container of its kind is made now and waits.
    this.opts.runs.prewarm(instanceSpec(def), tenant, image);
    entry.activator.ensureMin();
    return this.summary(entry);
  }

  list(tenant: string): EndpointSummary[] {
    return [...this.byKey.values()].filter((e) => e.activator.def.tenant === tenant).map((e) => this.summary(e));
  }

  remove(tenant: string, name: string): void {
    const entry = this.byKey.get(key(tenant, name));
    if (!entry) throw new EndpointError('not_found', notFound(name));
    this.byKey.delete(key(tenant, name));
    this.retire(entry.activator);
    this.save();
    this.opts.log.info({ tenant, endpoint: name }, 'endpoint removed');
  }

  /** The journal of a tenant's endpoint (not found: same words as a missing one). */
  journal(tenant: string, name: string): RequestJournal {
    const entry = this.byKey.get(key(tenant, name));
    if (!entry) throw new EndpointError('not_found', notFound(name));
    return entry.journal;
  }

  /**
   * The endpoint a request reaches: the tenant's own of that name (a valid token), else a public one.
   * Undefined: nothing this caller may reach.
   */
  route(name: string, tenant: string | undefined): Entry | undefined {
    if (tenant !== undefined) {
      const own = this.byKey.get(key(tenant, name));
      if (own) return own;
    }
    for (const e of this.byKey.values()) if (e.activator.def.name === name && e.activator.def.settings.public) return e;
    return undefined;
  }

  /** Images of every endpoint, deployed or draining: the image budget keeps them. */
  imagesInUse(): Set<string> {
    return new Set([...[...this.byKey.values()].map((e) => e.activator.def.image), ...[...this.draining].map((a) => a.def.image)]);
  }

  /** Held requests get 503; on Swarm the services go to 0 replicas (awaited: the agent is about to exit). */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.byKey.values()) e.journal.flush();
    await Promise.all([...this.byKey.values()].map((e) => e.activator.close()));
  }

  private retire(old: EndpointActivator, next?: EndpointActivator): void {
    this.draining.add(old);
    old.retire(next);
  }

  private entryFor(def: EndpointDefinition, journal?: RequestJournal, ledger = new CostLedger(def.spent)): Entry {
    const onInstances = () => {
      if (this.draining.has(activator) && activator.instanceRuns().length === 0) this.draining.delete(activator);
      this.save();
    };
    const onSpent = (cost: Parameters<CostLedger['add']>[0]) => {
      ledger.add(cost);
      this.save();
    };
    const services = this.opts.engine.endpointServices;
    const { prices, reference } = this.opts.pricing;
    const activator: EndpointActivator = services
      ? new SwarmActivator(def, {
        services, log: this.opts.log, holdMs: this.opts.holdMs, agentId: this.opts.runs.agentId, pidsLimit: this.opts.pidsLimit,
        egress: this.opts.network ?? true, onInstances, onSpent, costOf: (ms) => costOf(def.spec.hardware, ms, prices, reference),
      })
      : new Activator(def, { runs: this.opts.runs, log: this.opts.log, holdMs: this.opts.holdMs, onInstances, onSpent });
    const file = path.join(this.opts.dataDir, 'endpoints', `${def.name}-${createHash('sha256').update(def.tenant).digest('hex').slice(0, 12)}.requests.jsonl`);
    return { activator, journal: journal ?? new RequestJournal(file), ledger };
  }

  private summary(e: Entry): EndpointSummary {
    const d = e.activator.def;
    const { prices, reference } = this.opts.pricing;
    const now = Date.now();
    const active = e.activator.summary();
    // Instances still running count at their cost so far (old ones draining after a redeploy too).
    const running = [e.activator, ...[...this.draining].filter((a) => a.def.tenant === d.tenant && a.def.name === d.name)]
      .flatMap((a) => a.summary().instances)
      .filter((i) => i.startedAt)
      .map((i) => costOf(d.spec.hardware, now - Date.parse(i.startedAt!), prices, reference));
    return {
      name: d.name, path: `/e/${d.name}/`, settings: d.settings, hardware: d.spec.hardware, image: d.image, createdAt: d.createdAt,
      ...active, requests: e.journal.served, requestsToday: e.journal.today(),
      cost: { ...e.ledger.view(running), idle: idleWindow(d.spec.hardware, d.settings.idleMs, this.opts.pricing) },
    };
  }

  /** Definitions with their instances' run ids, so a restarted agent adopts them. */
  private save(): void {
    if (this.closed) return;
    const defs = [...this.byKey.values()].map((e) => ({ ...e.activator.def, instances: e.activator.instanceRuns(), spent: e.ledger.kept() }));
    try {
      this.store.save(defs);
    } catch (err) {
      this.opts.log.error({ err: (err as Error).message }, 'could not save the endpoint definitions');
    }
  }
}

function key(tenant: string, name: string): string {
  return `${tenant}\0${name}`;
}

/** The words for a missing endpoint, and for another tenant's. */
export function notFound(name: string): string {
  return `no endpoint ${name} on this agent`;
}
