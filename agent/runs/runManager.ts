/**
 * The run lifecycle: admit by capacity, take the context (cold) or reuse the image (warm), build, start
 * with limits, stream logs, stats and cost, stop on cancel or timeout, collect outputs, and always remove
 * the container, whichever way the run ends.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Catalog, FinalEvent, Prices, ReferenceRate, RunSpec, TaskResult } from '../protocol';
import { BuildError, ContainerSpec, ContextTar, Engine, EngineUnavailableError, HardwareUnavailableError, RunningContainer } from '../engine/engine';
import { fanOutExitCode, sumCosts } from './fanOut';
import { keepMergedOutputs, keepOutputs, keepTaskOutputs, TaskOutputs } from '../outputs/keepOutputs';
import type { OutputStore } from '../outputs/outputStore';
import { CapacityQueue } from './capacityQueue';
import { Run } from './run';
import type { PortTarget } from '../tunnel/runPorts';
import { costOf } from '../cost/cost';
import type { RunJournal, RunRecord } from '../store/runJournal';
import { SecretRedactor } from './secretRedactor';
import type { ImageKeeper } from '../images/imageKeeper';
import type { VolumeLease, Volumes } from '../volumes/volumes';
import type { ContainerMount } from '../engine/engine';
import { DEFAULT_GRACE_MS, InteractiveRun, RunStopped } from '../interactive/interactiveRun';
import type { FinalFields, Phases, Watch } from './lifecycle';
import { RunRecovery } from './runRecovery';

export interface RunManagerOptions {
  dataDir: string;
  /** Seconds between SIGTERM and SIGKILL when a run is stopped. */
  stopGraceSeconds: number;
  pidsLimit: number;
  network: boolean;
  outputDir: string;
  /** This agent's id: every container it makes carries it (label io.bytenite.agent). */
  agentId: string;
  /** Whether this agent owns the data folder, and so recovers the journal's unfinished runs. */
  owner: boolean;
  journal: RunJournal;
  /** Where runs' outputs are kept until fetched (apart from the journal, within a budget of their own). */
  outputs: OutputStore;
  /** Keeps images within their budget: told of each run's digest, and says why a run starts cold. */
  images?: Pick<ImageKeeper, 'used' | 'coldReason'>;
  /** Tenants' named volumes: a run waits for its volumes' locks before capacity, and mounts them. */
  volumes?: Pick<Volumes, 'acquire' | 'hold'>;
  /** How long an interactive run waits for a client on its stdin (again) before it is stopped. */
  interactiveGraceMs?: number;
}

export interface Pricing {
  prices: Prices;
  reference: ReferenceRate[];
}

/** How one task of a fan-out run went. */
interface TaskOutcome {
  result: TaskResult;
  startedAt?: number;
  finishedAt?: number;
  outputs?: TaskOutputs;
  failure?: { code: Extract<FinalEvent, { kind: 'failed' }>['code']; message: string };
}

/** How often a container whose removal failed (engine away) is tried again. */
const REAP_MS = 3000;

export class RunManager {
  private readonly runs = new Map<string, Run>();
  private readonly capacity: CapacityQueue;
  /** Containers that could not be removed (the engine was away): removed once it answers again. */
  private reapPending = false;
  private readonly reaper: NodeJS.Timeout;
  private recovering?: Promise<void>;
  private shuttingDown = false;
  private readonly recovery: RunRecovery;

  constructor(
    private readonly engine: Engine,
    private readonly catalog: Catalog,
    private readonly pricing: Pricing,
    private readonly opts: RunManagerOptions,
    private readonly log: Logger,
  ) {
    const gpus: Record<string, number> = {};
    for (const g of catalog.host.gpus) gpus[g.type] = (gpus[g.type] ?? 0) + 1;
    this.capacity = new CapacityQueue({ cpus: catalog.host.cpus, memoryMiB: catalog.host.memoryMiB, gpus });
    this.reaper = setInterval(() => void this.reap(), REAP_MS);
    this.reaper.unref();
    this.recovery = new RunRecovery({
      engine, opts, log, pricing, capacity: this.capacity, runs: this.runs,
      shuttingDown: () => this.shuttingDown,
      watch: (run, container, w) => this.watch(run, container, w),
      end: (run, final) => this.end(run, final),
      removeContainer: (run, container) => this.removeContainer(run, container),
      prune: () => this.prune(),
      reapLater: () => { this.reapPending = true; },
    });
  }

  get agentId(): string {
    return this.opts.agentId;
  }

  get(runId: string): Run | undefined {
    return this.runs.get(runId);
  }

  list(): Run[] {
    return [...this.runs.values()].reverse();
  }

  /** Registers a run and starts its lifecycle; a warm run needs no context. */
  async create(request: RunSpec, tenant = 'default'): Promise<Run> {
    // The build secrets' values stay out of the spec, which is journaled, listed and kept after the run.
    const { buildSecrets, ...spec } = request;
    const digest = imageDigest(spec, tenant);
    const warmImage = spec.noCache ? undefined : await this.engine.findImage(digest);
    if (warmImage) this.opts.images?.used(digest);
    const id = `r-${randomBytes(8).toString('hex')}`;
    const createdAt = new Date();
    // Journaled (secret values left out) before anyone hears of it: a restarted agent knows every run it accepted.
    const store = this.opts.journal.open({ id, agentId: this.opts.agentId, tenant, createdAt: createdAt.toISOString(), spec, warmImage });
    const run = new Run(id, spec, warmImage, { store, createdAt });
    run.tenant = tenant;
    if (buildSecrets) run.buildSecrets = new Map(Object.entries(buildSecrets).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    this.runs.set(run.id, run);
    this.log.info({ runId: run.id, name: spec.name, hardware: spec.hardware, warm: Boolean(warmImage) }, 'run created');
    void this.execute(run);
    return run;
  }

  cancel(run: Run): void {
    if (run.done || run.abort.signal.aborted) return;
    this.log.info({ runId: run.id }, 'run cancel requested');
    run.abort.abort(new Error('cancelled'));
  }

  uploadPath(run: Run): string {
    return path.join(this.opts.dataDir, 'uploads', `${run.id}.tar`);
  }

  /** The images of the runs not yet ended: the image budget never removes them. */
  imagesInUse(): Set<string> {
    return new Set([...this.runs.values()].flatMap((r) => (!r.done && r.image ? [r.image] : [])));
  }

  /** Cancels every run and waits until each has ended and cleaned up. */
  async shutdown(): Promise<void> {
    clearInterval(this.reaper);
    this.shuttingDown = true;
    await this.recovering;
    const pending = [...this.runs.values()].filter((r) => !r.done);
    for (const r of pending) this.cancel(r);
    await Promise.all(pending.map((r) => new Promise<void>((resolve) => {
      if (r.done) return resolve();
      const off = r.follow(r.lastSeq, () => { if (r.done) { off(); resolve(); } });
    })));
    await this.engine.close?.();
  }

  /** The container a single-task run of `spec` gets: its hot-pool key depends on all of it but the run id. */
  private containerSpec(runId: string, spec: RunSpec, tenant: string, image: string): ContainerSpec {
    return {
      runId, agentId: this.opts.agentId, image, command: spec.command, hardware: spec.hardware, pidsLimit: this.opts.pidsLimit,
      user: spec.user, network: this.opts.network, tenant, outputDir: spec.env.BYTENITE_OUTPUT_DIR || this.opts.outputDir,
      env: { BYTENITE_OUTPUT_DIR: this.opts.outputDir, BYTENITE_RUN_ID: runId, ...spec.env, BYTENITE_TASK_INDEX: '0', BYTENITE_TASK_COUNT: '1' },
    };
  }

  /**
   * Has a container made ahead for the next run of `spec` (an endpoint at zero wakes hot), unless one waits
   * already. A no-op on engines without a pool.
   */
  prewarm(spec: RunSpec, tenant: string, image: string): void {
    if (this.engine.schedules || (spec.parallel ?? 1) > 1) return;
    const c = this.containerSpec('r-prewarm0', spec, tenant, image);
    if (!this.engine.hotReady?.(c)) this.engine.expect?.(c);
  }

  private async execute(run: Run): Promise<void> {
    const t0 = Date.now();
    const phases = { queuedMs: 0, uploadMs: 0, buildMs: 0, startMs: 0, runMs: 0 };
    const signal = run.abort.signal;
    let start: FinalEvent['start'] = run.warmImage ? 'warm' : 'cold';
    const digest = imageDigest(run.spec, run.tenant);
    // Asked now, before a build makes the image again: the agent removed it to stay within the image budget.
    const coldReason = run.warmImage ? undefined : this.opts.images?.coldReason(digest);
    let steps = 0;
    let cachedSteps = 0;
    let builder: FinalFields['builder'];
    let release: (() => void) | undefined;
    let container: RunningContainer | undefined;
    let tarPath: ContextTar | undefined;
    let volumes: VolumeLease | undefined;
    const base = (over: Partial<FinalFields> = {}): FinalFields => ({
      exitCode: null, oomKilled: false, durationMs: 0, cost: costOf(run.hardware, 0, this.pricing.prices, this.pricing.reference),
      start, steps, cachedSteps, builder, phases, outputs: { files: 0, bytes: 0 }, ...over,
    });
    const aborted = () => signal.aborted;
    const secrets = redactorOf(run);
    // Emitted only after the container is gone, so a client that sees it can rely on the cleanup.
    let final: FinalEvent | undefined;

    try {
      // Upload may proceed while the run waits for capacity: the bytes go to disk either way.
      const uploaded = run.context?.promise.then((p) => {
        phases.uploadMs = Date.now() - t0;
        return p;
      });
      // An engine that schedules itself (Swarm) queues the run there, and says so through onQueued.
      const single = (run.spec.parallel ?? 1) === 1;
      // Volumes first: a run that waits for another one's write to its volume holds no capacity meanwhile.
      if (!run.spec.buildOnly) volumes = await this.opts.volumes?.acquire(run, (reason) => run.emit({ kind: 'queued', position: 1, reason }), (e) => run.emit(e), signal);
      const io = run.spec.interactive;
      if (io && !single) throw new Error('an interactive run (-i, -it) has one task: leave out --parallel');
      const specFor = (image: string): ContainerSpec => ({
        ...this.containerSpec(run.id, run.spec, run.tenant, image), signal, mounts: volumes?.mounts,
        ...(io ? { interactive: { tty: io.tty, cols: io.cols, rows: io.rows } } : {}),
      });
      let expected = false;
      if (!this.engine.schedules) {
        release = await this.capacity.acquire(run.hardware, (position) => {
          run.emit({ kind: 'queued', position });
          // A warm run that has to wait can have its container made meanwhile, and start hot when admitted.
          if (!expected && single && run.warmImage) this.engine.expect?.(specFor(run.warmImage));
          expected = true;
        }, signal);
      }
      phases.queuedMs = Date.now() - t0;

      let image = run.warmImage;
      if (!image) {
        tarPath = await abortable(uploaded!, signal);
        const b0 = Date.now();
        const built = await abortable(this.engine.build({
          contextTar: tarPath, dockerfile: run.spec.dockerfile, buildArgs: run.spec.buildArgs, digest, agentId: this.opts.agentId, tenant: run.tenant,
          target: run.spec.target, noCache: run.spec.noCache, secrets: run.buildSecrets,
          onStep: (s) => run.emit({ kind: 'building', ...s }), onTransfer: (t) => run.emit({ kind: 'uploading', to: 'engine', ...t }),
          onLog: (data) => {
            const text = secrets.push('build', data);
            if (text) run.emit({ kind: 'log', stream: 'build', time: new Date().toISOString(), data: text });
          },
          signal,
        }), signal).finally(() => (run.buildSecrets = undefined));
        const rest = secrets.flush('build');
        if (rest) run.emit({ kind: 'log', stream: 'build', time: new Date().toISOString(), data: rest });
        phases.buildMs = Date.now() - b0;
        image = built.imageId;
        run.image = image;
        this.opts.images?.used(digest);
        steps = built.steps;
        cachedSteps = built.cachedSteps;
        builder = built.builder;
        if (typeof tarPath === 'string') await rm(tarPath, { force: true });
      }
      if (aborted()) throw signal.reason;
      // `bytenite deploy` builds as runs do and stops there: the endpoint starts its own containers.
      if (run.spec.buildOnly) {
        final = { kind: 'exited', ...base({ exitCode: 0 }) };
        return;
      }

      if ((run.spec.parallel ?? 1) > 1) {
        run.emit({ kind: 'starting', start, image, steps, cachedSteps, builder, ...(coldReason ? { reason: coldReason } : {}) });
        // Task 0 takes the room the run was admitted with; the other tasks are admitted one by one.
        const slot = release;
        release = undefined;
        volumes?.running();
        final = await this.fanOut(run, image, slot, phases, base, volumes?.mounts);
        return;
      }
      const spec = specFor(image);
      // Nothing is awaited between this question and start(): the container it promises is still there.
      if (start === 'warm' && this.engine.hotReady?.(spec)) start = 'hot';
      run.emit({ kind: 'starting', start, image, steps, cachedSteps, builder, ...(coldReason ? { reason: coldReason } : {}) });
      const s0 = Date.now();
      // Output can arrive before the engine's answer to start: `running` must still come first.
      let isRunning = false;
      const markRunning = () => {
        if (isRunning) return;
        isRunning = true;
        phases.startMs = Date.now() - s0;
        run.emit({ kind: 'running', startedAt: new Date().toISOString() });
      };
      container = await this.engine.start(
        spec,
        {
          onOutput: (stream, data, cursor) => {
            markRunning();
            run.interactive?.touch();
            const text = secrets.push(stream, data);
            // The cursor goes with the text: held-back text is not past the cursor, so a restart re-reads it.
            if (text) run.emit({ kind: 'log', stream, time: new Date().toISOString(), data: text }, cursor);
          },
          onStats: (s) => run.emit({ kind: 'stats', ...s }),
          onQueued: (reason) => run.emit({ kind: 'queued', position: 1, reason }),
        },
      );
      markRunning();
      volumes?.running();
      if (io) {
        if (!container.stdin) throw new Error(`the ${this.engine.name} engine cannot give a run's program its stdin: run without -i/-t`);
        run.interactive = new InteractiveRun({
          stdin: container.stdin, idleTimeoutMs: io.idleTimeoutMs, graceMs: this.opts.interactiveGraceMs ?? DEFAULT_GRACE_MS,
          emit: (e) => run.emit(e),
          stop: (reason) => {
            this.log.info({ runId: run.id, why: reason.message }, 'interactive run stopped');
            run.abort.abort(reason);
          },
        });
      }

      final = await this.watch(run, container, {
        phases, base, deadline: run.spec.timeoutMs ? container.startedAt.getTime() + run.spec.timeoutMs : undefined, flush: secrets,
        // An exited container holds no CPU or memory: the next run need not wait for outputs and removal.
        exited: () => {
          release?.();
          release = undefined;
        },
      });
      // The output has ended: what was held back as a possible start of a secret is plain text after all.
      for (const stream of ['stdout', 'stderr'] as const) {
        const rest = secrets.flush(stream);
        if (rest) run.emit({ kind: 'log', stream, time: new Date().toISOString(), data: rest });
      }
      if (final.kind === 'failed') final = { ...final, message: secrets.redact(final.message) };
    } catch (err) {
      if (aborted()) {
        final = { kind: 'cancelled', ...base() };
      } else {
        const e = err as Error;
        const code = e instanceof BuildError ? 'build' : e instanceof EngineUnavailableError ? 'engine' : e instanceof HardwareUnavailableError ? 'hardware'
          : e.name === 'VolumeError' ? 'volume' : e.name === 'BadContextError' || e.name === 'UploadError' ? 'upload' : 'engine';
        const message = secrets.redact(e.message);
        this.log.warn({ runId: run.id, code, err: message }, 'run failed');
        final = { kind: 'failed', ...base(), code, message };
      }
    } finally {
      if (container) {
        if (final) this.opts.journal.settle(run.id, final);
        await this.removeContainer(run, container);
      }
      if (typeof tarPath === 'string') await rm(tarPath, { force: true });
      run.context?.reject(new Error('run ended'));
      release?.();
      // After the container is gone (the engine keeps a volume in use while a container refers to it).
      await volumes?.release();
      this.end(run, final ?? { kind: 'failed', ...base(), code: 'internal', message: 'the run ended without an outcome' });
      this.log.info({ runId: run.id, state: run.state, ms: Date.now() - t0 }, 'run ended');
    }
  }

  /** Follows a running container to its exit (or its stop on cancel or timeout) and says how the run ended. */
  private async watch(run: Run, running: RunningContainer, w: Watch): Promise<FinalEvent> {
    const signal = run.abort.signal;
    const ticker = setInterval(() => {
      const ms = Date.now() - running.startedAt.getTime();
      const c = costOf(run.hardware, ms, this.pricing.prices, []);
      run.emit({ kind: 'cost', total: c.total, billedMs: c.billedMs, currency: 'USD' });
    }, 1000);
    let timedOut = false;
    const timer = w.deadline !== undefined
      ? setTimeout(() => { timedOut = true; void running.stop(this.opts.stopGraceSeconds); }, Math.max(0, w.deadline - Date.now()))
      : undefined;
    const onAbort = () => void running.stop(this.opts.stopGraceSeconds);
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort(); // cancelled while the container was starting
    const target = portTarget(running);
    if (target) run.ports.running(0, target);
    else run.ports.unreachable = noForwarding(this.engine.name);
    let exit;
    try {
      exit = await running.exited;
    } finally {
      run.ports.stopped(0, 'the container exited');
      run.interactive?.close('the run ended');
      clearInterval(ticker);
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      w.exited?.();
    }
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = w.flush?.flush(stream);
      if (rest) run.emit({ kind: 'log', stream, time: new Date().toISOString(), data: rest });
    }
    // Docker's times have nanoseconds but Date keeps milliseconds: a process that ran for 0.4 ms still ran,
    // and rounds up to one billing increment.
    const durationMs = Math.max(1, exit.finishedAt.getTime() - exit.startedAt.getTime());
    w.phases.runMs = durationMs;
    const outputs = await keepOutputs(this.opts.outputs, run.id, run.tenant, running, this.log);
    const fields = w.base({
      exitCode: exit.exitCode, oomKilled: exit.oomKilled, durationMs,
      cost: costOf(run.hardware, durationMs, this.pricing.prices, this.pricing.reference), outputs,
    });
    if (timedOut) return { kind: 'failed', ...fields, code: 'timeout', message: `stopped after its timeout of ${formatMs(run.spec.timeoutMs!)}` };
    // Stopped by the agent itself (an interactive run idle, or left without a client): the final event says why.
    if (signal.aborted && signal.reason instanceof RunStopped) return { kind: 'failed', ...fields, code: 'timeout', message: signal.reason.message };
    if (signal.aborted) return { kind: 'cancelled', ...fields };
    if (exit.error && exit.exitCode !== 0 && !exit.oomKilled) return { kind: 'failed', ...fields, code: 'engine', message: exit.error };
    return { kind: 'exited', ...fields };
  }

  /**
   * Runs the N tasks of a fan-out run from one image, each admitted by capacity like a run of its own,
   * and adds up how they went: exit code, cost (each task charged for its own running time), outputs.
   */
  private async fanOut(run: Run, image: string, slot: (() => void) | undefined, phases: Phases, base: Watch['base'], mounts?: ContainerMount[]): Promise<FinalEvent> {
    const count = run.spec.parallel ?? 1;
    const live = new Map<number, number>();
    const ended: TaskResult[] = [];
    const zero = costOf(run.hardware, 0, this.pricing.prices, this.pricing.reference);
    const ticker = setInterval(() => {
      if (live.size === 0 && ended.length === 0) return;
      const now = Date.now();
      const c = sumCosts([...ended.map((t) => t.cost), ...[...live.values()].map((t) => costOf(run.hardware, now - t, this.pricing.prices, []))], zero);
      run.emit({ kind: 'cost', total: c.total, billedMs: c.billedMs, currency: 'USD' });
    }, 1000);
    const s0 = Date.now();
    let outcomes: TaskOutcome[];
    try {
      outcomes = await Promise.all(Array.from({ length: count }, (_, i) => this.runTask(run, image, i, count, i === 0 ? slot : undefined, mounts, {
        started: (t) => {
          live.set(i, t);
          if (live.size === 1 && ended.length === 0) phases.startMs = Date.now() - s0;
        },
        ended: (r) => {
          live.delete(i);
          ended.push(r);
        },
      })));
    } finally {
      clearInterval(ticker);
    }
    const tasks = outcomes.map((o) => o.result);
    const ran = outcomes.filter((o) => o.startedAt !== undefined && o.finishedAt !== undefined);
    const durationMs = ran.length ? Math.max(1, Math.max(...ran.map((o) => o.finishedAt!)) - Math.min(...ran.map((o) => o.startedAt!))) : 0;
    phases.runMs = durationMs;
    const outputs = await keepMergedOutputs(this.opts.outputs, run.id, run.tenant, new Map(outcomes.map((o) => [o.result.index, o.outputs])), this.log);
    const fields = base({
      exitCode: fanOutExitCode(tasks), oomKilled: tasks.some((t) => t.oomKilled), durationMs,
      cost: sumCosts(tasks.map((t) => t.cost), zero), outputs, tasks,
    });
    if (run.abort.signal.aborted) return { kind: 'cancelled', ...fields };
    const failed = outcomes.filter((o) => o.failure);
    if (failed.length > 0) {
      const first = failed[0];
      const more = failed.length > 1 ? ` (${failed.length - 1} more task(s) failed too: ${failed.slice(1).map((o) => o.result.index).join(', ')})` : '';
      return { kind: 'failed', ...fields, code: first.failure!.code, message: `task ${first.result.index}: ${first.failure!.message}${more}` };
    }
    return { kind: 'exited', ...fields };
  }

  /** One task of a fan-out run: admitted, started, followed to its exit, its outputs kept, its container removed. */
  private async runTask(
    run: Run, image: string, index: number, count: number, slot: (() => void) | undefined, mounts: ContainerMount[] | undefined,
    on: { started(at: number): void; ended(r: TaskResult): void },
  ): Promise<TaskOutcome> {
    const signal = run.abort.signal;
    const secrets = new SecretRedactor(run.spec.env, run.spec.secretEnv);
    const outcome: TaskOutcome = {
      result: { index, exitCode: null, oomKilled: false, durationMs: 0, cost: costOf(run.hardware, 0, this.pricing.prices, this.pricing.reference) },
    };
    const flush = () => {
      for (const stream of ['stdout', 'stderr'] as const) {
        const rest = secrets.flush(stream);
        if (rest) run.emit({ kind: 'log', task: index, stream, time: new Date().toISOString(), data: rest });
      }
    };
    let release = slot;
    let container: RunningContainer | undefined;
    let timedOut = false;
    try {
      if (!release && !this.engine.schedules) {
        release = await this.capacity.acquire(run.hardware, (position) => run.emit({ kind: 'queued', task: index, position }), signal);
      }
      if (signal.aborted) throw signal.reason;
      let isRunning = false;
      const markRunning = () => {
        if (isRunning) return;
        isRunning = true;
        run.emit({ kind: 'running', task: index, startedAt: new Date().toISOString() });
      };
      container = await this.engine.start(
        {
          runId: run.id, task: index, agentId: this.opts.agentId, image, command: run.spec.command, hardware: run.hardware,
          pidsLimit: this.opts.pidsLimit, user: run.spec.user, network: this.opts.network, tenant: run.tenant, outputDir: run.spec.env.BYTENITE_OUTPUT_DIR || this.opts.outputDir, signal, mounts,
          env: {
            BYTENITE_OUTPUT_DIR: this.opts.outputDir, BYTENITE_RUN_ID: run.id, ...run.spec.env,
            BYTENITE_TASK_INDEX: String(index), BYTENITE_TASK_COUNT: String(count),
          },
        },
        {
          onOutput: (stream, data) => {
            markRunning();
            const text = secrets.push(stream, data);
            if (text) run.emit({ kind: 'log', task: index, stream, time: new Date().toISOString(), data: text });
          },
          onStats: (st) => run.emit({ kind: 'stats', task: index, ...st }),
          onQueued: (reason) => run.emit({ kind: 'queued', task: index, position: 1, reason }),
        },
      );
      markRunning();
      const running = container;
      on.started(running.startedAt.getTime());
      const timer = run.spec.timeoutMs !== undefined
        ? setTimeout(() => { timedOut = true; void running.stop(this.opts.stopGraceSeconds).catch(() => {}); }, run.spec.timeoutMs)
        : undefined;
      const onAbort = () => void running.stop(this.opts.stopGraceSeconds).catch(() => {});
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      const target = portTarget(running);
      if (target) run.ports.running(index, target);
      else run.ports.unreachable = noForwarding(this.engine.name);
      let exit;
      try {
        exit = await running.exited;
      } finally {
        run.ports.stopped(index, `task ${index}'s container exited`);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        release?.();
        release = undefined;
      }
      flush();
      const durationMs = Math.max(1, exit.finishedAt.getTime() - exit.startedAt.getTime());
      outcome.startedAt = exit.startedAt.getTime();
      outcome.finishedAt = outcome.startedAt + durationMs;
      outcome.result = {
        index, exitCode: exit.exitCode, oomKilled: exit.oomKilled, durationMs,
        cost: costOf(run.hardware, durationMs, this.pricing.prices, this.pricing.reference),
      };
      outcome.outputs = await keepTaskOutputs(this.opts.outputs, run.id, index, running, this.log);
      if (timedOut) outcome.failure = { code: 'timeout', message: `stopped after its timeout of ${formatMs(run.spec.timeoutMs!)}` };
      else if (!signal.aborted && exit.error && exit.exitCode !== 0 && !exit.oomKilled) outcome.failure = { code: 'engine', message: secrets.redact(exit.error) };
    } catch (err) {
      if (!signal.aborted) {
        const e = err as Error;
        const code = e instanceof HardwareUnavailableError ? 'hardware' : 'engine';
        outcome.failure = { code, message: secrets.redact(e.message) };
        this.log.warn({ runId: run.id, task: index, code, err: outcome.failure.message }, 'task failed');
      }
    } finally {
      flush();
      if (container) await this.removeContainer(run, container);
      release?.();
    }
    if (outcome.failure) outcome.result.error = outcome.failure.message;
    on.ended(outcome.result);
    return outcome;
  }

  private async removeContainer(run: Run, container: RunningContainer): Promise<void> {
    await container.remove().catch((err) => {
      // Most likely the engine is away: the reaper removes it once the engine answers again.
      this.reapPending = true;
      this.log.error({ runId: run.id, err: (err as Error).message }, 'could not remove container; will retry');
    });
  }

  /** Emits the final event, records it, and keeps the journal within its cap. */
  private end(run: Run, final: FinalEvent): void {
    run.emit(final);
    this.opts.journal.finish(this.record(run));
    this.prune();
  }

  private record(run: Run): RunRecord {
    return {
      id: run.id, agentId: this.opts.agentId, tenant: run.tenant, createdAt: run.createdAt.toISOString(), spec: run.spec,
      warmImage: run.warmImage, lastSeq: run.lastSeq, final: run.final,
    };
  }

  private prune(): void {
    const done = [...this.runs.values()].filter((r) => r.done).map((r) => r.id);
    // A run whose outputs are still kept keeps its record: a client fetching them needs it.
    const live = this.opts.outputs.held();
    for (const r of this.runs.values()) if (!r.done) live.add(r.id);
    for (const id of this.opts.journal.prune(done, live)) {
      this.runs.delete(id);
      this.opts.outputs.forget(id);
    }
  }

  private async reap(): Promise<void> {
    if (!this.reapPending) return;
    try {
      const live = new Set([...this.runs.values()].filter((r) => !r.done).map((r) => r.id));
      const n = await this.engine.removeLeftovers(this.opts.agentId, live);
      this.reapPending = false;
      if (n) this.log.info({ removed: n }, 'removed containers left while the engine was away');
    } catch {
      /* still away: next time */
    }
  }

  /**
   * Reads the journal back and takes up this agent's unfinished runs (agent/runs/runRecovery.ts). A
   * shutdown waits for the taking-up.
   */
  restore(): void {
    this.recovering = this.recovery.restore();
  }

  async ensureDirs(): Promise<void> {
    await mkdir(path.join(this.opts.dataDir, 'uploads'), { recursive: true });
    await mkdir(path.join(this.opts.dataDir, 'runs'), { recursive: true });
  }
}

/** The digest an image of this spec is labelled with: the tenant's context digest, and the target stage when there is one. */
export function imageDigest(spec: Pick<RunSpec, 'contextDigest' | 'target'>, tenant: string): string {
  const scoped = tenantDigest(spec.contextDigest, tenant);
  return spec.target ? createHash('sha256').update(`bytenite-target\n${spec.target}\n${scoped}`).digest('hex') : scoped;
}

/** Hides the run's secret env values and its build secrets' values in what it reports. */
function redactorOf(run: Run): SecretRedactor {
  const built = [...(run.buildSecrets?.values() ?? [])].map((v, i) => [`\0build-secret-${i}`, v.toString('utf8')] as const);
  return new SecretRedactor({ ...run.spec.env, ...Object.fromEntries(built) }, [...run.spec.secretEnv, ...built.map(([k]) => k)]);
}

/**
 * The context digest scoped by tenant, so a tenant can neither reuse nor detect (by a warm start) an image
 * built from another tenant's context.
 */
export function tenantDigest(contextDigest: string, tenant: string): string {
  return createHash('sha256').update(`bytenite-tenant\n${tenant}\n${contextDigest}`).digest('hex');
}


/** Rejects with the signal's reason as soon as it aborts, whatever the promise is doing. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function noForwarding(engine: string): string {
  return `the ${engine} engine cannot reach its containers' ports, so they cannot be forwarded${engine === 'swarm' ? ' (its tasks run on other machines); run on a Docker engine agent for -p' : ''}`;
}

/** The running container as its run's ports see it, when the engine can reach its ports. */
function portTarget(running: RunningContainer): PortTarget | undefined {
  const { dial, probe, exec } = running;
  if (!dial || !probe) return undefined;
  return { dial: (p) => dial(p), probe: (p) => probe(p), startedAt: running.startedAt, ...(exec ? { exec: (r) => exec(r) } : {}) };
}
