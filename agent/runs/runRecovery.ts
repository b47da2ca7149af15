/**
 * Taking runs up again after the agent restarts: the journal is read back, finished runs are listed as they
 * ended, and this agent's unfinished ones are followed again where their containers outlived the agent, or
 * ended with what is known of them where they did not. The steps every run's end goes through (watching a
 * container, the final event, removing the container) are the run manager's, reached through RecoveryHost.
 */
import type { Logger } from 'pino';
import type { FinalEvent, RunEvent } from '../protocol';
import type { Engine, RunningContainer } from '../engine/engine';
import type { CapacityQueue } from './capacityQueue';
import { EventStore, Run, RunState, stateOf } from './run';
import { costOf } from '../cost/cost';
import { JournalEntry, LogCursor, PastRunEvents } from '../store/runJournal';
import { SecretRedactor } from './secretRedactor';
import type { VolumeLease } from '../volumes/volumes';
import type { FinalFields, Phases, Watch } from './lifecycle';
import type { Pricing, RunManagerOptions } from './runManager';

/** What recovery needs of the run manager. */
export interface RecoveryHost {
  engine: Engine;
  opts: RunManagerOptions;
  log: Logger;
  pricing: Pricing;
  capacity: CapacityQueue;
  runs: Map<string, Run>;
  shuttingDown(): boolean;
  watch(run: Run, container: RunningContainer, w: Watch): Promise<FinalEvent>;
  end(run: Run, final: FinalEvent): void;
  removeContainer(run: Run, container: RunningContainer): Promise<void>;
  prune(): void;
  /** A container could not be dealt with now (the engine is away): the reaper removes it later. */
  reapLater(): void;
}

export class RunRecovery {
  /** The volumes of the runs taken up after a restart, held from the journal's reading on. */
  private readonly heldVolumes = new Map<string, VolumeLease>();

  constructor(private readonly host: RecoveryHost) {}

  private get opts(): RunManagerOptions {
    return this.host.opts;
  }

  /**
   * Reads the journal back: finished runs are listed as they ended; the unfinished ones of this agent are
   * taken up again. A container still running is followed from where its log stopped; one that exited
   * while the agent was down gets its exit recorded; a run that never got a container failed with the
   * agent. Containers of this agent that no run owns are removed.
   */
  restore(): Promise<void> | undefined {
    const unfinished: Array<{ run: Run; entries: JournalEntry[] }> = [];
    for (const { record, entries } of this.opts.journal.load()) {
      const dir = this.opts.journal.dirOf(record.id);
      if (!entries) {
        const store: EventStore = new PastRunEvents(dir);
        const done = new Run(record.id, record.spec, record.warmImage, {
          store, createdAt: new Date(record.createdAt),
          restored: { lastSeq: record.lastSeq ?? 0, state: record.final!.kind, final: record.final },
        });
        done.tenant = record.tenant ?? 'default';
        this.host.runs.set(record.id, done);
        continue;
      }
      let state: RunState = 'queued';
      for (const e of entries) state = stateOf(e.event) ?? state;
      const run = new Run(record.id, record.spec, record.warmImage, {
        store: this.opts.journal.reopen(record.id), createdAt: new Date(record.createdAt),
        restored: { lastSeq: entries.at(-1)?.seq ?? 0, state },
      });
      run.tenant = record.tenant ?? 'default';
      this.host.runs.set(run.id, run);
      // Held from now, before any new run can ask: its container may still be writing them.
      const held = this.opts.owner ? this.opts.volumes?.hold(run, (e) => run.emit(e)) : undefined;
      if (held) this.heldVolumes.set(run.id, held);
      if (record.agentId === this.opts.agentId && this.opts.owner) unfinished.push({ run, entries });
      else if (this.opts.owner) unfinished.push({ run, entries: [] }); // another (gone) agent's: see recoverAll
    }
    this.host.prune();
    if (!this.opts.owner) return undefined;
    return this.recoverAll(unfinished);
  }

  private async recoverAll(unfinished: Array<{ run: Run; entries: JournalEntry[] }>): Promise<void> {
    // The engine may be away as the agent starts: keep trying, the runs stay as recorded meanwhile.
    let own: Awaited<ReturnType<Engine['listOwn']>> | undefined;
    for (let delay = 500; !own; delay = Math.min(delay * 2, 10_000)) {
      try {
        own = await this.host.engine.listOwn(this.opts.agentId);
      } catch (err) {
        this.host.log.warn({ err: (err as Error).message }, 'cannot reach the engine to recover runs; retrying');
        await new Promise((r) => setTimeout(r, delay));
        if (this.host.shuttingDown()) return;
      }
    }
    const byRun = new Map(own.map((c) => [c.runId, c]));
    const keep = new Set<string>();
    const jobs: Promise<void>[] = [];
    for (const { run, entries } of unfinished) {
      const c = byRun.get(run.id);
      const fanOut = (run.spec.parallel ?? 1) > 1;
      const settled = c || fanOut ? undefined : this.opts.journal.settled(run.id);
      if (c && entries.length > 0 && !fanOut) {
        keep.add(run.id);
        jobs.push(this.recover(run, entries, c.id));
      } else if (settled) {
        // The run had ended and the agent was cleaning up its container when it stopped.
        this.host.log.info({ runId: run.id }, 'run had ended before the agent stopped; its outcome was kept');
        await this.heldVolumes.get(run.id)?.release();
        this.host.end(run, settled);
      } else {
        const lost = run.state === 'starting' || run.state === 'running';
        this.host.log.warn({ runId: run.id, state: run.state }, 'run lost while the agent was down');
        await this.heldVolumes.get(run.id)?.release();
        this.host.end(run, {
          kind: 'failed', ...this.lostFields(run, entries), code: lost ? 'engine' : 'internal',
          message: fanOut && lost
            ? 'the agent restarted during this fan-out run: its tasks are not taken up again after a restart (their containers were removed); run it again'
            : lost
            ? 'the agent restarted and this run\'s container was gone (removed while the agent was down): its outcome is unknown; run it again'
            : `the agent restarted while the run was ${run.state}; what it had received did not survive: run it again`,
        });
      }
    }
    const removed = await this.host.engine.removeLeftovers(this.opts.agentId, keep).catch(() => 0);
    if (removed) this.host.log.info({ removed }, 'removed leftover containers');
    this.host.log.info({ recovered: keep.size, failed: unfinished.length - keep.size }, 'journal recovered');
    // Not awaited: `recovering` is the taking-up, not the recovered runs' whole life. A shutdown waits for it,
    // then cancels them like any run (a recovered endpoint instance, which never ends on its own, included).
    void Promise.all(jobs).catch((err) => this.host.log.error({ err: (err as Error).message }, 'a recovered run failed to end cleanly'));
  }


  private lostFields(run: Run, entries: JournalEntry[]): FinalFields {
    const starting = findEvent(entries, 'starting');
    return {
      exitCode: null, oomKilled: false, durationMs: 0, cost: costOf(run.hardware, 0, this.host.pricing.prices, this.host.pricing.reference),
      start: starting?.event.start ?? (run.warmImage ? 'warm' : 'cold'), steps: starting?.event.steps ?? 0,
      cachedSteps: starting?.event.cachedSteps ?? 0,
      phases: { queuedMs: 0, uploadMs: 0, buildMs: 0, startMs: 0, runMs: 0 }, outputs: { files: 0, bytes: 0 },
    };
  }

  /** Takes up a run whose container outlived the agent before it: logs continue after the last one recorded. */
  private async recover(run: Run, entries: JournalEntry[], containerId: string): Promise<void> {
    const starting = findEvent(entries, 'starting');
    const running = entries.find((e) => e.event.kind === 'running');
    let cursor: LogCursor | undefined;
    for (const e of entries) if (e.cursor) cursor = e.cursor;
    const t0 = run.createdAt.getTime();
    const phases: Phases = {
      queuedMs: 0, uploadMs: 0,
      buildMs: starting && starting.event.start === 'cold' ? Math.max(0, starting.at - t0) : 0,
      startMs: starting && running ? Math.max(0, running.at - starting.at) : 0, runMs: 0,
    };
    const base = (over: Partial<FinalFields> = {}): FinalFields => ({ ...this.lostFields(run, entries), phases, ...over });
    let release: (() => void) | undefined;
    let container: RunningContainer | undefined;
    let final: FinalEvent | undefined;
    // Its container has its volumes mounted already: it holds them again, without waiting.
    const volumes = this.heldVolumes.get(run.id);
    volumes?.running();
    try {
      if (!this.host.engine.schedules) release = await this.host.capacity.acquire(run.hardware, () => {}, new AbortController().signal);
      let runningEmitted = Boolean(running);
      // The journal never held the secret values; the container's own environment does.
      const secrets = new SecretRedactor(await this.host.engine.containerEnv(containerId), run.spec.secretEnv ?? []);
      const startedAt = running ? new Date((running.event as Extract<RunEvent, { kind: 'running' }>).startedAt) : undefined;
      container = await this.host.engine.reattach(containerId, run.spec.env?.BYTENITE_OUTPUT_DIR || this.opts.outputDir, {
        onOutput: (stream, data, c) => {
          if (!runningEmitted) {
            runningEmitted = true;
            run.emit({ kind: 'running', startedAt: new Date().toISOString() });
          }
          const text = secrets.push(stream, data);
          if (text) run.emit({ kind: 'log', stream, time: new Date().toISOString(), data: text }, c);
        },
        onStats: (st) => run.emit({ kind: 'stats', ...st }),
      }, cursor, startedAt);
      if (!runningEmitted) {
        runningEmitted = true;
        run.emit({ kind: 'running', startedAt: container.startedAt.toISOString() });
      }
      this.host.log.info({ runId: run.id, container: containerId, afterLog: cursor }, 'reattached to a run');
      final = await this.host.watch(run, container, {
        phases, base, deadline: run.spec.timeoutMs ? (startedAt ?? container.startedAt).getTime() + run.spec.timeoutMs : undefined, flush: secrets,
      });
    } catch (err) {
      if (run.abort.signal.aborted) final = { kind: 'cancelled', ...base() };
      else final = { kind: 'failed', ...base(), code: 'engine', message: (err as Error).message };
    } finally {
      if (container) {
        if (final) this.opts.journal.settle(run.id, final);
        await this.host.removeContainer(run, container);
      } else this.host.reapLater();
      release?.();
      await volumes?.release();
      this.host.end(run, final ?? { kind: 'failed', ...base(), code: 'internal', message: 'the run ended without an outcome' });
      this.host.log.info({ runId: run.id, state: run.state }, 'recovered run ended');
    }
  }
}

function findEvent<K extends RunEvent['kind']>(entries: JournalEntry[], kind: K): (JournalEntry & { event: Extract<RunEvent, { kind: K }> }) | undefined {
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i].event.kind === kind) return entries[i] as JournalEntry & { event: Extract<RunEvent, { kind: K }> };
  }
  return undefined;
}
