/**
 * The schedules of an agent: each a cron expression (read by croner, in its IANA zone) and the spec of the
 * `buildOnly` run that built its image. At each due time it starts an ordinary run through the same
 * admission a client's `run.create` passes (agent/runs/admitRun.ts), named `schedule NAME` so that run lists
 * show whose it is; the run manager knows nothing of schedules.
 *
 * What a due time becomes (start, queue, skip) and what a downtime's missed times become (none, once, all)
 * is decided in policy.ts; this class keeps the timers, the definitions on disk, and the results.
 *
 * Names are per tenant: another tenant's schedule is not found, in the same words as one that does not exist.
 */
import type { Logger } from 'pino';
import { isFinal, type FinalEvent, type RunSpec, type ScheduleFiring, type ScheduleSettings, type ScheduleSummary } from '../protocol';
import type { Engine } from '../engine/engine';
import type { Run } from '../runs/run';
import { imageDigest, type RunManager } from '../runs/runManager';
import { ScheduleStore, RECENT_FIRINGS, type ScheduleDefinition } from './definitionStore';
import { catchUpRuns, checkCron, cronOf, missedTimes, overlapDecision, skipReason } from './policy';

export class ScheduleError extends Error {
  constructor(readonly code: 'not_found' | 'bad_message', message: string) {
    super(message);
  }
}

export interface SchedulesOptions {
  runs: RunManager;
  engine: Engine;
  log: Logger;
  dataDir: string;
  /** Starts a run as a client's `run.create` would (admission checks included). */
  start(spec: RunSpec, tenant: string): Promise<Run>;
}

interface Entry {
  def: ScheduleDefinition;
  timer?: NodeJS.Timeout;
  /** Firings whose run is being created (not yet in `def.active`): they count as running for `overlap`. */
  starting: number;
}

/** setTimeout's longest delay; a time further off is reached in steps. */
const MAX_DELAY = 2 ** 31 - 1;

export class Schedules {
  private readonly byKey = new Map<string, Entry>();
  private readonly store: ScheduleStore;
  private closed = false;

  constructor(private readonly opts: SchedulesOptions) {
    this.store = new ScheduleStore(opts.dataDir);
  }

  /**
   * Takes the kept schedules up again: follows the runs they had going (the run manager recovered them), then
   * applies each one's catch-up rule to the times it missed while the agent was down, then arms its timer.
   */
  load(now = new Date()): void {
    for (const def of this.store.load((m) => this.opts.log.warn(m))) {
      const entry: Entry = { def, starting: 0 };
      this.byKey.set(key(def.tenant, def.name), entry);
      const active = def.active;
      def.active = [];
      for (const id of active) {
        const run = this.opts.runs.get(id);
        if (run && run.tenant === def.tenant) this.watch(entry, run);
        else this.settle(entry, id, undefined, 'the agent lost this run while it was down');
      }
      if (!def.paused) this.catchUp(entry, now);
      this.arm(entry);
    }
    this.save();
  }

  /** Registers or replaces `name` (a replaced one keeps its history and totals); its first time is the next one after now. */
  async add(tenant: string, name: string, spec: RunSpec, settings: ScheduleSettings): Promise<ScheduleSummary> {
    if (this.closed) throw new ScheduleError('bad_message', 'the agent is shutting down');
    const bad = checkCron(settings);
    if (bad) throw new ScheduleError('bad_message', bad);
    const image = await this.opts.engine.findImage(imageDigest(spec, tenant));
    if (!image) throw new ScheduleError('not_found', 'no image built from this context on the agent: build it first (bytenite schedule add does, with a buildOnly run)');
    const { buildOnly: _b, buildSecrets: _s, noCache: _n, ...kept } = spec;
    const old = this.byKey.get(key(tenant, name));
    if (old) clearTimeout(old.timer);
    const now = new Date().toISOString();
    const def: ScheduleDefinition = {
      tenant, name, spec: kept, settings, image, createdAt: old?.def.createdAt ?? now, paused: false, lastDue: now,
      active: old?.def.active ?? [], recent: old?.def.recent ?? [], runs: old?.def.runs ?? 0, skipped: old?.def.skipped ?? 0, cost: old?.def.cost ?? 0,
    };
    const entry: Entry = { def, starting: old?.starting ?? 0 };
    this.byKey.set(key(tenant, name), entry);
    this.arm(entry);
    this.save();
    this.opts.log.info({ tenant, schedule: name, settings, image }, old ? 'schedule replaced' : 'schedule added');
    return this.summary(entry);
  }

  list(tenant: string): ScheduleSummary[] {
    return [...this.byKey.values()].filter((e) => e.def.tenant === tenant).map((e) => this.summary(e));
  }

  /** Removes the schedule; a run it started goes on, as any run does. */
  remove(tenant: string, name: string): void {
    const entry = this.entry(tenant, name);
    clearTimeout(entry.timer);
    this.byKey.delete(key(tenant, name));
    this.save();
    this.opts.log.info({ tenant, schedule: name }, 'schedule removed');
  }

  /** Fires now, once, under its overlap rule (paused or not); resolves once the firing has its first result. */
  async runNow(tenant: string, name: string): Promise<ScheduleSummary> {
    const entry = this.entry(tenant, name);
    await this.fire(entry, new Date(), 'manual');
    return this.summary(entry);
  }

  pause(tenant: string, name: string): ScheduleSummary {
    const entry = this.entry(tenant, name);
    entry.def.paused = true;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    this.save();
    return this.summary(entry);
  }

  /** Fires at its times again from now: the times passed while paused are not caught up (pausing said not to run them). */
  resume(tenant: string, name: string): ScheduleSummary {
    const entry = this.entry(tenant, name);
    if (entry.def.paused) {
      entry.def.paused = false;
      entry.def.lastDue = new Date().toISOString();
      this.arm(entry);
      this.save();
    }
    return this.summary(entry);
  }

  /** Images of every schedule: the image budget keeps them for the next firing. */
  imagesInUse(): Set<string> {
    return new Set([...this.byKey.values()].map((e) => e.def.image));
  }

  close(): void {
    this.save();
    this.closed = true;
    for (const e of this.byKey.values()) clearTimeout(e.timer);
  }

  private entry(tenant: string, name: string): Entry {
    const entry = this.byKey.get(key(tenant, name));
    if (!entry) throw new ScheduleError('not_found', notFound(name));
    return entry;
  }

  /** The times missed since the last one dealt with, under the catch-up rule. */
  private catchUp(entry: Entry, now: Date): void {
    const { def } = entry;
    const { times, truncated } = missedTimes(def.settings, new Date(def.lastDue), now);
    if (times.length === 0) return;
    def.lastDue = times[times.length - 1].toISOString();
    this.opts.log.info({ tenant: def.tenant, schedule: def.name, missed: times.length + truncated, catchUp: def.settings.catchUp }, 'schedule missed times while the agent was down');
    if (def.settings.catchUp === 'none') {
      this.record(entry, {
        time: def.lastDue, trigger: 'catch-up', result: 'skipped', standsFor: times.map((t) => t.toISOString()),
        reason: `missed while the agent was down (--catch-up none)${truncated ? `; ${truncated} earlier times not listed` : ''}`,
      });
      def.skipped += times.length + truncated;
      return;
    }
    for (const run of catchUpRuns(def.settings.catchUp, times)) {
      void this.fire(entry, run.time, 'catch-up', run.standsFor.map((t) => t.toISOString()));
    }
  }

  /** Sets the timer for the next due time after the last one dealt with (or now, whichever is later). */
  private arm(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (this.closed || entry.def.paused) return;
    const from = new Date(Math.max(Date.now(), Date.parse(entry.def.lastDue)));
    const next = cronOf(entry.def.settings).nextRun(from);
    if (!next) return;
    const delay = next.getTime() - Date.now();
    entry.timer = setTimeout(() => {
      if (delay > MAX_DELAY) return this.arm(entry);
      // A timer may wake a little early: the time is due when the clock says so.
      if (Date.now() < next.getTime()) return this.arm(entry);
      entry.def.lastDue = next.toISOString();
      void this.fire(entry, next, 'cron');
      this.arm(entry);
      this.save();
    }, Math.min(Math.max(delay, 0), MAX_DELAY));
    entry.timer.unref();
  }

  /** A due time (or a manual run): started, queued or skipped under `overlap`. */
  private async fire(entry: Entry, time: Date, trigger: ScheduleFiring['trigger'], standsFor?: string[]): Promise<void> {
    const { def } = entry;
    const running = this.running(entry);
    const firing: ScheduleFiring = { time: time.toISOString(), trigger, result: 'running', ...(standsFor && standsFor.length > 1 ? { standsFor } : {}) };
    switch (overlapDecision(def.settings.overlap, running.length + entry.starting, def.queued ? 1 : 0)) {
      case 'skip':
        firing.result = 'skipped';
        firing.reason = skipReason(def.settings.overlap, running[0]?.id);
        def.skipped++;
        this.record(entry, firing);
        this.opts.log.info({ tenant: def.tenant, schedule: def.name, time: firing.time }, 'schedule time skipped: its last run is still going');
        this.save();
        return;
      case 'queue':
        firing.result = 'queued';
        def.queued = firing;
        this.record(entry, firing);
        this.save();
        return;
      case 'start':
        this.record(entry, firing);
        return this.start(entry, firing);
    }
  }

  private async start(entry: Entry, firing: ScheduleFiring): Promise<void> {
    const { def } = entry;
    entry.starting++;
    try {
      const run = await this.opts.start({ ...def.spec, name: scheduleRunName(def.name) }, def.tenant);
      if (!run.warmImage) {
        // The image is gone (removed by hand): the run would wait for a context no one sends.
        this.opts.runs.cancel(run);
        throw new Error(`the image of schedule ${def.name} is no longer on the engine: add the schedule again`);
      }
      firing.runId = run.id;
      def.runs++;
      def.active.push(run.id);
      this.opts.log.info({ tenant: def.tenant, schedule: def.name, runId: run.id, time: firing.time, trigger: firing.trigger }, 'schedule fired');
      this.watch(entry, run);
    } catch (err) {
      firing.result = 'refused';
      firing.reason = (err as Error).message;
      def.skipped++;
      this.opts.log.warn({ tenant: def.tenant, schedule: def.name, err: firing.reason }, 'schedule could not start its run');
    } finally {
      entry.starting--;
      this.save();
    }
  }

  /** Records the run's end with its firing, then starts a queued firing once nothing runs. */
  private watch(entry: Entry, run: Run): void {
    if (!entry.def.active.includes(run.id)) entry.def.active.push(run.id);
    if (run.final) return this.settle(entry, run.id, run.final);
    const off = run.subscribe((_seq, event) => {
      if (!isFinal(event)) return;
      off();
      this.settle(entry, run.id, event);
    });
  }

  private settle(entry: Entry, runId: string, final: FinalEvent | undefined, lost?: string): void {
    const { def } = entry;
    def.active = def.active.filter((id) => id !== runId);
    const firing = def.recent.find((f) => f.runId === runId);
    if (firing) {
      firing.result = final?.kind ?? 'failed';
      firing.exitCode = final ? final.exitCode : null;
      if (final) firing.cost = final.cost.total;
      if (lost) firing.reason = lost;
    }
    if (final) def.cost += final.cost.total;
    const queued = def.queued;
    if (queued && this.byKey.get(key(def.tenant, def.name)) === entry && this.running(entry).length + entry.starting === 0) {
      def.queued = undefined;
      queued.result = 'running';
      void this.start(entry, queued);
    }
    this.save();
  }

  private running(entry: Entry): Run[] {
    return entry.def.active.map((id) => this.opts.runs.get(id)).filter((r): r is Run => Boolean(r && !r.done));
  }

  private record(entry: Entry, firing: ScheduleFiring): void {
    entry.def.recent.unshift(firing);
    entry.def.recent.length = Math.min(entry.def.recent.length, RECENT_FIRINGS);
  }

  private summary(entry: Entry): ScheduleSummary {
    const d = entry.def;
    const next = d.paused ? [] : cronOf(d.settings).nextRuns(3, new Date(Math.max(Date.now(), Date.parse(d.lastDue)))).map((t) => t.toISOString());
    return {
      name: d.name, settings: d.settings, hardware: d.spec.hardware, image: d.image, createdAt: d.createdAt, paused: d.paused,
      next, timezone: d.settings.timezone, ...(d.recent[0] ? { last: d.recent[0] } : {}), recent: d.recent,
      runs: d.runs, skipped: d.skipped, cost: d.cost,
    };
  }

  private save(): void {
    if (this.closed) return;
    try {
      this.store.save([...this.byKey.values()].map((e) => e.def));
    } catch (err) {
      this.opts.log.error({ err: (err as Error).message }, 'could not save the schedules');
    }
  }
}

function key(tenant: string, name: string): string {
  return `${tenant}\0${name}`;
}

/** The name of a schedule's runs, as `bytenite runs` lists them. */
export function scheduleRunName(schedule: string): string {
  return `schedule ${schedule}`;
}

/** The words for a missing schedule, and for another tenant's. */
export function notFound(name: string): string {
  return `no schedule ${name} on this agent`;
}
