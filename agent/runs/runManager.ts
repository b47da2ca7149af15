/**
 * The run lifecycle: admit by capacity, take the context (cold) or reuse the image (warm), build, start
 * with limits, stream logs, stats and cost, stop on cancel or timeout, collect outputs, and always remove
 * the container, whichever way the run ends.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Catalog, FinalEvent, Prices, ReferenceRate, RunSpec } from '../protocol';
import { BuildError, Engine, EngineUnavailableError, HardwareUnavailableError, RunningContainer } from '../engine/engine';
import { CapacityQueue } from './capacityQueue';
import { Run } from './run';
import { costOf } from '../cost/cost';
import { SecretRedactor } from './secretRedactor';

export interface RunManagerOptions {
  dataDir: string;
  /** Seconds between SIGTERM and SIGKILL when a run is stopped. */
  stopGraceSeconds: number;
  pidsLimit: number;
  network: boolean;
  outputDir: string;
}

export interface Pricing {
  prices: Prices;
  reference: ReferenceRate[];
}

type FinalFields = Omit<FinalEvent, 'kind' | 'code' | 'message'>;

export class RunManager {
  private readonly runs = new Map<string, Run>();
  private readonly capacity: CapacityQueue;

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
  }

  get(runId: string): Run | undefined {
    return this.runs.get(runId);
  }

  list(): Run[] {
    return [...this.runs.values()].reverse();
  }

  /** Registers a run and starts its lifecycle; a warm run needs no context. */
  async create(spec: RunSpec, tenant = 'default'): Promise<Run> {
    const warmImage = await this.engine.findImage(tenantDigest(spec.contextDigest, tenant));
    const run = new Run(`r-${randomBytes(8).toString('hex')}`, spec, warmImage);
    run.tenant = tenant;
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

  outputsPath(run: Run): string {
    return path.join(this.opts.dataDir, 'runs', run.id, 'outputs.tar');
  }

  /** Cancels every run and waits until each has ended and cleaned up. */
  async shutdown(): Promise<void> {
    const pending = [...this.runs.values()].filter((r) => !r.done);
    for (const r of pending) this.cancel(r);
    await Promise.all(pending.map((r) => new Promise<void>((resolve) => {
      if (r.done) return resolve();
      const off = r.follow(r.lastSeq, () => { if (r.done) { off(); resolve(); } });
    })));
  }

  private async execute(run: Run): Promise<void> {
    const t0 = Date.now();
    const phases = { queuedMs: 0, uploadMs: 0, buildMs: 0, startMs: 0, runMs: 0 };
    const signal = run.abort.signal;
    let start: 'warm' | 'cold' = run.warmImage ? 'warm' : 'cold';
    let steps = 0;
    let cachedSteps = 0;
    let release: (() => void) | undefined;
    let container: RunningContainer | undefined;
    let tarPath: string | undefined;
    const base = (over: Partial<FinalFields> = {}): FinalFields => ({
      exitCode: null, oomKilled: false, durationMs: 0, cost: costOf(run.hardware, 0, this.pricing.prices, this.pricing.reference),
      start, steps, cachedSteps, phases, outputs: { files: 0, bytes: 0 }, ...over,
    });
    const aborted = () => signal.aborted;
    const secrets = new SecretRedactor(run.spec.env, run.spec.secretEnv);
    // Emitted only after the container is gone, so a client that sees it can rely on the cleanup.
    let final: FinalEvent | undefined;

    try {
      // Upload may proceed while the run waits for capacity: the bytes go to disk either way.
      const uploaded = run.context?.promise.then((p) => {
        phases.uploadMs = Date.now() - t0;
        return p;
      });
      // An engine that schedules itself (Swarm) queues the run there, and says so through onQueued.
      if (!this.engine.schedules) release = await this.capacity.acquire(run.hardware, (position) => run.emit({ kind: 'queued', position }), signal);
      phases.queuedMs = Date.now() - t0;

      let image = run.warmImage;
      if (!image) {
        tarPath = await abortable(uploaded!, signal);
        const b0 = Date.now();
        const built = await abortable(this.engine.build({
          contextTar: tarPath, dockerfile: run.spec.dockerfile, buildArgs: run.spec.buildArgs,
          digest: tenantDigest(run.spec.contextDigest, run.tenant),
          onStep: (s) => run.emit({ kind: 'building', ...s }),
          onLog: (data) => run.emit({ kind: 'log', stream: 'build', time: new Date().toISOString(), data }),
        }), signal);
        phases.buildMs = Date.now() - b0;
        image = built.imageId;
        steps = built.steps;
        cachedSteps = built.cachedSteps;
        await rm(tarPath, { force: true });
      }
      if (aborted()) throw signal.reason;

      run.emit({ kind: 'starting', start, image, steps, cachedSteps });
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
        {
          runId: run.id, image, command: run.spec.command, hardware: run.hardware, pidsLimit: this.opts.pidsLimit,
          network: this.opts.network, outputDir: run.spec.env.BYTENITE_OUTPUT_DIR || this.opts.outputDir, signal,
          env: { BYTENITE_OUTPUT_DIR: this.opts.outputDir, BYTENITE_RUN_ID: run.id, ...run.spec.env },
        },
        {
          onOutput: (stream, data) => {
            markRunning();
            const text = secrets.push(stream, data);
            if (text) run.emit({ kind: 'log', stream, time: new Date().toISOString(), data: text });
          },
          onStats: (s) => run.emit({ kind: 'stats', ...s }),
          onQueued: (reason) => run.emit({ kind: 'queued', position: 1, reason }),
        },
      );
      markRunning();

      const running = container;
      const ticker = setInterval(() => {
        const ms = Date.now() - running.startedAt.getTime();
        const c = costOf(run.hardware, ms, this.pricing.prices, []);
        run.emit({ kind: 'cost', total: c.total, billedMs: c.billedMs, currency: 'USD' });
      }, 1000);
      let timedOut = false;
      const timer = run.spec.timeoutMs
        ? setTimeout(() => { timedOut = true; void running.stop(this.opts.stopGraceSeconds); }, run.spec.timeoutMs)
        : undefined;
      const onAbort = () => void running.stop(this.opts.stopGraceSeconds);
      signal.addEventListener('abort', onAbort, { once: true });
      if (aborted()) onAbort(); // cancelled while the container was starting
      let exit;
      try {
        exit = await container.exited;
      } finally {
        clearInterval(ticker);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      }
      // The output has ended: what was held back as a possible start of a secret is plain text after all.
      for (const stream of ['stdout', 'stderr'] as const) {
        const rest = secrets.flush(stream);
        if (rest) run.emit({ kind: 'log', stream, time: new Date().toISOString(), data: rest });
      }
      // Docker's times have nanoseconds but Date keeps milliseconds: a process that ran for 0.4 ms still ran,
      // and rounds up to one billing increment.
      const durationMs = Math.max(1, exit.finishedAt.getTime() - exit.startedAt.getTime());
      phases.runMs = durationMs;
      const saved = await container.saveOutputs(this.outputsPath(run)).catch((err) => {
        this.log.warn({ runId: run.id, err: (err as Error).message }, 'could not copy outputs');
        return undefined;
      });
      const fields = base({
        exitCode: exit.exitCode, oomKilled: exit.oomKilled, durationMs,
        cost: costOf(run.hardware, durationMs, this.pricing.prices, this.pricing.reference),
        outputs: saved ? { files: saved.files, bytes: saved.bytes } : { files: 0, bytes: 0 },
      });
      if (timedOut) {
        final = { kind: 'failed', ...fields, code: 'timeout', message: `stopped after its timeout of ${formatMs(run.spec.timeoutMs!)}` };
      } else if (aborted()) {
        final = { kind: 'cancelled', ...fields };
      } else if (exit.error && exit.exitCode !== 0 && !exit.oomKilled) {
        final = { kind: 'failed', ...fields, code: 'engine', message: secrets.redact(exit.error) };
      } else {
        final = { kind: 'exited', ...fields };
      }
    } catch (err) {
      if (aborted()) {
        final = { kind: 'cancelled', ...base() };
      } else {
        const e = err as Error;
        const code = e instanceof BuildError ? 'build' : e instanceof EngineUnavailableError ? 'engine' : e instanceof HardwareUnavailableError ? 'hardware'
          : e.name === 'BadContextError' || e.name === 'UploadError' ? 'upload' : 'engine';
        const message = secrets.redact(e.message);
        this.log.warn({ runId: run.id, code, err: message }, 'run failed');
        final = { kind: 'failed', ...base(), code, message };
      }
    } finally {
      if (container) {
        await container.remove().catch((err) => this.log.error({ runId: run.id, err: (err as Error).message }, 'could not remove container'));
      }
      if (tarPath) await rm(tarPath, { force: true });
      run.context?.reject(new Error('run ended'));
      release?.();
      run.emit(final ?? { kind: 'failed', ...base(), code: 'internal', message: 'the run ended without an outcome' });
      this.log.info({ runId: run.id, state: run.state, ms: Date.now() - t0 }, 'run ended');
    }
  }

  async ensureDirs(): Promise<void> {
    await mkdir(path.join(this.opts.dataDir, 'uploads'), { recursive: true });
    await mkdir(path.join(this.opts.dataDir, 'runs'), { recursive: true });
  }
}

/**
 * The digest an image is labelled with: the context digest scoped by tenant, so a tenant can neither reuse
 * nor detect (by a warm start) an image built from another tenant's context.
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
