/**
 * Named volumes of each tenant: made on first use, kept across runs and agent restarts, one writer at a time,
 * within a quota per tenant, priced per GiB-month. The run lifecycle calls three hooks: `check` when a run is
 * created (refusals that need no waiting), `acquire` before it is admitted by capacity (waits for the volumes'
 * locks; gives the container's mounts) and the lease's `release` once its container is gone.
 *
 * Usage is the engine's own measure (`GET /system/df`: the engine walks each volume's folder and adds up its
 * files' sizes), taken when a run that writes a volume is created, admitted, every `checkMs` while it runs,
 * and at its end; and whenever volumes are listed. A run can so cross the quota by what it writes between two
 * measures; it is told in its events and the next run that writes a volume is refused.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Prices, RunEvent, RunSpec, VolumeSummary } from '../protocol';
import type { ContainerMount } from '../engine/engine';
import { formatBytes } from '../hardware/sizes';
import { VolumeLocks, type LockRequest } from './volumeLocks';
import { VolumeInUseError, type VolumeBackend } from './volumeBackend';

export const DEFAULT_VOLUME_QUOTA_BYTES = 20 * 1024 ** 3;
const DEFAULT_CHECK_MS = 10_000;
/** Longest a run's end waits for the last measure of its volumes. */
const FINAL_MEASURE_MS = 10_000;
const GiB = 1024 ** 3;

const LABEL = { managed: 'io.bytenite.managed', agent: 'io.bytenite.agent', tenant: 'io.bytenite.tenant', volume: 'io.bytenite.volume' } as const;

export type VolumeErrorCode = 'not_found' | 'volume_in_use' | 'over_quota' | 'volume_refused';

export class VolumeError extends Error {
  constructor(readonly code: VolumeErrorCode, message: string) {
    super(message);
    this.name = 'VolumeError';
  }
}

/** What a run's volumes say in its events: over quota, and on a cluster where the run was placed for them. */
export type VolumeEvent = Extract<RunEvent, { kind: 'volume' | 'placed' }>;

export interface VolumeLease {
  mounts: ContainerMount[];
  /** The container runs: from now on, usage is watched against the quota while it writes. */
  running(): void;
  /** The container is gone: the volumes are free for the next run (after a last measure, when it wrote). */
  release(): Promise<void>;
}

export interface VolumesOptions {
  agentId: string;
  dataDir: string;
  /** Bytes each tenant's volumes may hold together. */
  quotaBytes?: number;
  /** How often usage is measured while a run writes a volume. */
  checkMs?: number;
  /** The agent's default output folder: a volume may not be mounted over it. */
  outputDir: string;
  price?: Prices['volume'];
  log: Logger;
}

interface RunLike {
  id: string;
  tenant: string;
  spec: Pick<RunSpec, 'volumes'>;
}

export class Volumes {
  private readonly locks = new VolumeLocks();
  /** When a run last used each volume, by engine name (volumes.json in the data folder). */
  private readonly lastUsed: Record<string, string>;
  private readonly file: string;
  readonly quotaBytes: number;

  /** `backend` undefined: the engine cannot give volumes (Swarm), and `engineName` says which it is. */
  constructor(private readonly backend: VolumeBackend | undefined, private readonly engineName: string, private readonly opts: VolumesOptions) {
    this.quotaBytes = opts.quotaBytes ?? DEFAULT_VOLUME_QUOTA_BYTES;
    this.file = path.join(opts.dataDir, 'volumes.json');
    let read: Record<string, string> = {};
    try {
      read = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string>;
    } catch { /* none yet */ }
    this.lastUsed = read;
  }

  /** Refusals known when a run is created, before it waits for anything. */
  async check(spec: RunSpec, tenant: string): Promise<void> {
    const vols = spec.volumes ?? [];
    if (vols.length === 0 || spec.buildOnly) return;
    if (!this.backend) {
      throw new VolumeError('volume_refused', `this agent's ${this.engineName} engine cannot mount volumes. Run with -v on an agent with a Docker engine`);
    }
    const parallel = spec.parallel ?? 1;
    const rw = vols.filter((v) => !v.readOnly);
    if (parallel > 1 && rw.length) {
      throw new VolumeError('volume_refused', `a fan-out run (--parallel ${parallel}) cannot mount ${rw.map((v) => `volume ${v.name}`).join(', ')} read-write: ` +
        `its tasks would all write it at once. Mount it read-only (${rw.map((v) => `-v ${v.name}:${v.path}:ro`).join(' ')}), or write from a run of one task`);
    }
    const out = spec.env?.BYTENITE_OUTPUT_DIR || this.opts.outputDir;
    for (const v of vols) {
      if (within(v.path, out) || within(out, v.path)) {
        throw new VolumeError('volume_refused', `volume ${v.name} at ${v.path} overlaps the output folder ${out}: mount it elsewhere`);
      }
    }
    const away = await this.backend.refuse?.(vols.map((v) => ({ engineName: this.engineNameOf(tenant, v.name), name: v.name })));
    if (away) throw new VolumeError('volume_refused', away);
    if (rw.length) {
      const over = await this.overQuota(tenant);
      if (over) throw new VolumeError('over_quota', over);
    }
  }

  /**
   * Waits until the run can have its volumes (one writer at a time), makes the missing ones and gives the
   * mounts. `onWait` is told why it waits; `onEvent` gets the run's volume events.
   */
  async acquire(run: RunLike, onWait: (reason: string) => void, onEvent: (e: VolumeEvent) => void, signal?: AbortSignal): Promise<VolumeLease | undefined> {
    const reqs = this.requests(run);
    if (!reqs.length || !this.backend) return undefined;
    const unlock = await this.locks.acquire(run.id, reqs, onWait, signal);
    const unfollow = this.backend.follow?.(run.id, onEvent);
    const release = () => {
      unfollow?.();
      unlock();
    };
    const writes = reqs.some((r) => !r.readOnly);
    try {
      if (writes) {
        const over = await this.overQuota(run.tenant);
        if (over) throw new VolumeError('over_quota', over);
      }
      for (const r of reqs) {
        await this.backend.create(r.key, this.labels(run.tenant, r.label));
        this.lastUsed[r.key] = new Date().toISOString();
      }
      this.save();
    } catch (err) {
      release();
      throw err;
    }
    return this.lease(run, reqs, release, writes, onEvent);
  }

  /** A run an agent restart found still running: it holds its volumes as it did (no waiting, no quota check). */
  hold(run: RunLike, onEvent: (e: VolumeEvent) => void): VolumeLease | undefined {
    const reqs = this.requests(run);
    if (!reqs.length || !this.backend) return undefined;
    return this.lease(run, reqs, this.locks.hold(run.id, reqs), reqs.some((r) => !r.readOnly), onEvent);
  }

  async list(tenant: string): Promise<{ volumes: VolumeSummary[]; usedBytes: number; quotaBytes: number; price: { gibMonth: number; source: string } }> {
    const price = { gibMonth: this.opts.price?.gibMonth ?? 0, source: this.opts.price?.source ?? 'no storage price in this agent\'s pricing table' };
    if (!this.backend) return { volumes: [], usedBytes: 0, quotaBytes: this.quotaBytes, price };
    const [vols, sizes] = await Promise.all([this.backend.list(this.tenantLabels(tenant)), this.backend.sizes()]);
    const measuredAt = new Date().toISOString();
    const volumes = vols.filter((v) => v.engineName === this.engineNameOf(tenant, v.labels[LABEL.volume] ?? '')).map((v): VolumeSummary => {
      const sizeBytes = sizes.get(v.engineName) ?? 0;
      return {
        name: v.labels[LABEL.volume], sizeBytes, measuredAt, createdAt: v.createdAt,
        ...(this.lastUsed[v.engineName] ? { lastUsedAt: this.lastUsed[v.engineName] } : {}),
        inUse: this.locks.holders(v.engineName), monthlyCost: (sizeBytes / GiB) * price.gibMonth,
      };
    }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { volumes, usedBytes: volumes.reduce((n, v) => n + v.sizeBytes, 0), quotaBytes: this.quotaBytes, price };
  }

  /** Removes a volume of the tenant and its data; another tenant's is as missing as one that never was. */
  async remove(tenant: string, name: string): Promise<void> {
    const key = this.engineNameOf(tenant, name);
    const found = this.backend ? (await this.backend.list(this.tenantLabels(tenant))).some((v) => v.engineName === key) : false;
    if (!found || !this.backend) throw new VolumeError('not_found', `no volume ${name} on this agent (bytenite volumes lists them)`);
    const users = this.locks.holders(key);
    if (users.length) {
      throw new VolumeError('volume_in_use', `volume ${name} is in use by run ${users.map((u) => u.runId).join(', run ')}: ` +
        'remove it once that run has ended (or cancel the run first)');
    }
    try {
      await this.backend.remove(key);
    } catch (err) {
      if (err instanceof VolumeInUseError) throw new VolumeError('volume_in_use', `volume ${name} is still in use by a container on the engine: try again once it is gone`);
      throw err;
    }
    delete this.lastUsed[key];
    this.save();
    this.opts.log.info({ tenant, volume: name }, 'volume removed');
  }

  /** The engine's name of a tenant's volume: a hash, so names never clash across tenants or agents. */
  engineNameOf(tenant: string, name: string): string {
    return `bytenite-vol-${createHash('sha256').update(`bytenite-volume\n${this.opts.agentId}\n${tenant}\n${name}`).digest('hex').slice(0, 32)}`;
  }

  private requests(run: RunLike): LockRequest[] {
    return (run.spec.volumes ?? []).map((v) => ({ key: this.engineNameOf(run.tenant, v.name), label: v.name, readOnly: v.readOnly }));
  }

  private lease(run: RunLike, reqs: LockRequest[], unlock: () => void, writes: boolean, onEvent: (e: VolumeEvent) => void): VolumeLease {
    let timer: NodeJS.Timeout | undefined;
    let told = false;
    /** The run's end no longer waits: nothing more goes into its events. */
    let ended = false;
    let measuring: Promise<void> | undefined;
    const measure = () => (measuring ??= (async () => {
      try {
        const used = await this.usedBytes(run.tenant);
        if (used > this.quotaBytes && !told && !ended) {
          told = true;
          this.opts.log.warn({ runId: run.id, usedBytes: used, quotaBytes: this.quotaBytes }, 'a run took its tenant\'s volumes over quota');
          onEvent({
            kind: 'volume', state: 'over-quota', usedBytes: used, quotaBytes: this.quotaBytes,
            message: `the volumes of this tenant now hold ${formatBytes(used)}, over their quota of ${formatBytes(this.quotaBytes)}: ` +
              'this run goes on, but the next run that writes a volume is refused until some are removed (bytenite volume rm NAME)',
          });
        }
      } catch (err) {
        this.opts.log.warn({ runId: run.id, err: (err as Error).message }, 'could not measure volumes');
      } finally {
        measuring = undefined;
      }
    })());
    return {
      mounts: (run.spec.volumes ?? []).map((v) => ({ volume: this.engineNameOf(run.tenant, v.name), target: v.path, readOnly: v.readOnly })),
      running: () => {
        if (!writes || timer) return;
        timer = setInterval(() => void measure(), this.opts.checkMs ?? DEFAULT_CHECK_MS);
        timer.unref();
      },
      release: async () => {
        clearInterval(timer);
        for (const r of reqs) this.lastUsed[r.key] = new Date().toISOString();
        this.save();
        // Free first: the next writer measures for itself when admitted, and must not wait on this measure.
        unlock();
        if (!writes) return;
        // Once more, so that a crossing is in this run's events; bounded, the run's end never waits on a slow engine.
        let timeout: NodeJS.Timeout | undefined;
        await Promise.race([
          (async () => { await measuring; await measure(); })(),
          new Promise<void>((r) => { timeout = setTimeout(r, FINAL_MEASURE_MS); }),
        ]);
        clearTimeout(timeout);
        ended = true;
      },
    };
  }

  private async usedBytes(tenant: string): Promise<number> {
    if (!this.backend) return 0;
    const [vols, sizes] = await Promise.all([this.backend.list(this.tenantLabels(tenant)), this.backend.sizes()]);
    return vols.reduce((n, v) => n + (sizes.get(v.engineName) ?? 0), 0);
  }

  /** Why a run that writes a volume may not start now, or undefined. */
  private async overQuota(tenant: string): Promise<string | undefined> {
    const used = await this.usedBytes(tenant);
    if (used <= this.quotaBytes) return undefined;
    return `the volumes of this tenant hold ${formatBytes(used)}, over their quota of ${formatBytes(this.quotaBytes)} (bytenite agent --volume-quota): ` +
      'remove one (bytenite volumes lists them, bytenite volume rm NAME removes one), or mount read-only (:ro)';
  }

  private tenantLabels(tenant: string): Record<string, string> {
    return {
      [LABEL.managed]: '1', [LABEL.agent]: this.opts.agentId,
      [LABEL.tenant]: createHash('sha256').update(`bytenite-tenant\n${tenant}`).digest('hex').slice(0, 16),
    };
  }

  private labels(tenant: string, name: string): Record<string, string> {
    return { ...this.tenantLabels(tenant), [LABEL.volume]: name };
  }

  private save(): void {
    try {
      writeFileSync(`${this.file}.tmp`, JSON.stringify(this.lastUsed));
      renameSync(`${this.file}.tmp`, this.file);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not record when volumes were last used');
    }
  }
}

/** Whether `inner` is `outer` or below it. */
function within(inner: string, outer: string): boolean {
  const a = inner.replace(/\/+$/, '');
  const b = outer.replace(/\/+$/, '');
  return a === b || a.startsWith(`${b}/`);
}
