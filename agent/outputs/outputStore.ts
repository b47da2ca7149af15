/**
 * The agent's store of run outputs: a run's result, kept apart from the event journal, within a budget of
 * its own, until a client of the run's tenant has fetched it or a retention time has passed.
 *
 * Layout, in `<dataDir>/outputs/`: `<runId>.tar` (the archive, as the engine gave it), `<runId>.json` (its
 * record: counts, SHA-256, when it was saved, fetched or removed and why) and `<runId>.tar.part` while it is
 * being written. A record outlives its archive, so a client asking for removed outputs is told when and why.
 *
 * Which outputs go first when room is needed: fetched ones (oldest fetch first), then none: outputs no client
 * has fetched are never removed before their retention time; a new archive that does not fit is refused
 * instead, and its run says so (see OutputsNotKept).
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatBytes, formatRetention } from '../hardware/sizes';
import { OutputsNotKept, writeArchive } from './archiveWriter';

export interface OutputRecord {
  runId: string;
  tenant: string;
  /** Regular files in the archive, and their bytes. */
  files: number;
  bytes: number;
  /** Size and SHA-256 of the archive itself: what a client downloads and checks. */
  tarBytes: number;
  sha256?: string;
  savedAt: string;
  fetchedAt?: string;
  /** Set once the archive is gone; the record stays to say why. */
  removedAt?: string;
  removedWhy?: string;
}

export interface OutputStoreOptions {
  budgetBytes: number;
  retentionMs: number;
}

export { OutputsNotKept };

/** An archive being written: readers follow it as it grows (a client may download while the engine copies). */
export class SavingArchive extends EventEmitter {
  written = 0;
  /** Set when the archive is complete (a record) or abandoned (an error). */
  outcome?: { record?: OutputRecord; error?: Error };
  constructor(readonly runId: string, readonly tenant: string, readonly partPath: string) {
    super();
    this.setMaxListeners(0);
  }
}

export interface OutputUsage {
  usedBytes: number;
  budgetBytes: number;
  /** Runs whose outputs are kept, and how many of them no client has fetched yet. */
  runs: number;
  unfetched: number;
  retentionMs: number;
}

const SWEEP_MS = 10 * 60 * 1000;

export class OutputStore {
  private readonly records = new Map<string, OutputRecord>();
  private readonly saving = new Map<string, SavingArchive>();
  private readonly started = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;
  private lastFetch = 0;
  /** Bytes of fan-out tasks' archives being written, before their merge: within the budget too. */
  private workBytes = 0;

  private constructor(readonly dir: string, readonly opts: OutputStoreOptions) {
    this.started.setMaxListeners(0);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /**
   * Opens the store and reads its records back. `legacyRunsDir`: outputs an older agent kept as
   * `runs/<id>/outputs.tar` are moved in (their SHA-256 is then unknown, and a download is not checked).
   */
  static async open(dir: string, opts: OutputStoreOptions, legacyRunsDir?: string): Promise<OutputStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new OutputStore(dir, opts);
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (name.endsWith('.part')) rmSync(file, { force: true }); // a save the agent died in: never complete
      else if (name.endsWith('.json')) {
        try {
          const r = JSON.parse(readFileSync(file, 'utf8')) as OutputRecord;
          if (!r.removedAt && !existsSync(store.tarOf(r.runId))) Object.assign(r, { removedAt: new Date().toISOString(), removedWhy: 'its archive was missing when the agent started' });
          store.records.set(r.runId, r);
        } catch {
          rmSync(file, { force: true }); // torn: the archive beside it is not vouched for
        }
      }
    }
    if (legacyRunsDir && existsSync(legacyRunsDir)) store.adoptLegacy(legacyRunsDir);
    store.sweep();
    return store;
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  tarOf(runId: string): string {
    return path.join(this.dir, `${runId}.tar`);
  }

  /** A path in the store's folder for work files (a fan-out task's archive before the merge). */
  workPath(name: string): string {
    return path.join(this.dir, name);
  }

  get(runId: string): OutputRecord | undefined {
    return this.records.get(runId);
  }

  /** The archive being written for this run, if any. */
  inProgress(runId: string): SavingArchive | undefined {
    return this.saving.get(runId);
  }

  /** Resolves when a save for this run begins or a record for it exists (or at once if one does). */
  whenStarted(runId: string, signal: AbortSignal): Promise<void> {
    if (this.saving.has(runId) || this.records.has(runId)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.started.off(runId, done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.started.on(runId, done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Runs whose archives are kept: their journal records must stay too. */
  held(): Set<string> {
    const out = new Set(this.saving.keys());
    for (const r of this.records.values()) if (!r.removedAt) out.add(r.runId);
    return out;
  }

  usage(): OutputUsage {
    let usedBytes = 0;
    let runs = 0;
    let unfetched = 0;
    for (const r of this.records.values()) {
      if (r.removedAt) continue;
      usedBytes += r.tarBytes;
      runs++;
      if (!r.fetchedAt) unfetched++;
    }
    for (const s of this.saving.values()) usedBytes += s.written;
    usedBytes += this.workBytes;
    return { usedBytes, budgetBytes: this.opts.budgetBytes, runs, unfetched, retentionMs: this.opts.retentionMs };
  }

  /**
   * Writes an archive from the engine into the store as it arrives, counting its files and hashing it on
   * the way, and refusing it (OutputsNotKept, nothing left on disk) the moment it would pass the budget.
   * Resolves with the record, or undefined when the archive holds no regular file.
   */
  async save(runId: string, tenant: string, archive: NodeJS.ReadableStream): Promise<OutputRecord | undefined> {
    const s = new SavingArchive(runId, tenant, path.join(this.dir, `${runId}.tar.part`));
    this.saving.set(runId, s);
    this.started.emit(runId);
    try {
      const counted = await writeArchive(archive, s.partPath, {
        room: (sofar, n) => this.makeRoom(sofar, n),
        grew: (n) => {
          s.written += n;
          s.emit('progress');
        },
      });
      if (counted.files === 0) {
        rmSync(s.partPath, { force: true });
        s.outcome = {};
        return undefined;
      }
      const record: OutputRecord = {
        runId, tenant, files: counted.files, bytes: counted.bytes, tarBytes: s.written, sha256: counted.sha256, savedAt: new Date().toISOString(),
      };
      renameSync(s.partPath, this.tarOf(runId));
      this.put(record);
      s.outcome = { record };
      return record;
    } catch (err) {
      rmSync(s.partPath, { force: true });
      s.outcome = { error: err as Error };
      throw err;
    } finally {
      this.saving.delete(runId);
      s.emit('progress');
    }
  }

  /**
   * Writes an archive to `file` (a task's part of a fan-out run) within the same budget as `save`;
   * the caller merges such files and hands the result to `adopt`.
   */
  async saveWork(archive: NodeJS.ReadableStream, file: string): Promise<{ files: number; bytes: number }> {
    let written = 0;
    try {
      return await writeArchive(archive, file, { room: (sofar, n) => this.makeRoom(sofar, n), grew: (n) => { written += n; this.workBytes += n; } });
    } catch (err) {
      rmSync(file, { force: true });
      throw err;
    } finally {
      // Counted until the merge takes over (adopt measures the merged archive afresh).
      this.workBytes -= written;
    }
  }

  /** Takes a finished archive (a fan-out run's merged tasks) into the store. */
  async adopt(runId: string, tenant: string, file: string, files: number, bytes: number): Promise<OutputRecord> {
    const hash = createHash('sha256');
    let tarBytes = 0;
    await pipeline(createReadStream(file), new Writable({
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        tarBytes += chunk.length;
        cb();
      },
    }));
    this.makeRoom(tarBytes, tarBytes);
    const record: OutputRecord = { runId, tenant, files, bytes, tarBytes, sha256: hash.digest('hex'), savedAt: new Date().toISOString() };
    renameSync(file, this.tarOf(runId));
    this.put(record);
    this.started.emit(runId);
    return record;
  }

  /** A client of the run's tenant has the outputs: they may now go first when room is needed. */
  markFetched(runId: string): void {
    const r = this.records.get(runId);
    if (!r || r.removedAt || r.fetchedAt) return;
    // Strictly increasing, so that "oldest fetch first" holds for fetches within the same millisecond.
    this.lastFetch = Math.max(Date.now(), this.lastFetch + 1);
    r.fetchedAt = new Date(this.lastFetch).toISOString();
    this.writeRecord(r);
  }

  /** When kept outputs will be removed at the latest. */
  expiresAt(r: OutputRecord): Date {
    return new Date(Date.parse(r.savedAt) + this.opts.retentionMs);
  }

  /** Drops a run's outputs and record altogether (its journal record was pruned). */
  forget(runId: string): void {
    this.records.delete(runId);
    rmSync(this.tarOf(runId), { force: true });
    rmSync(path.join(this.dir, `${runId}.json`), { force: true });
  }

  /** Removes archives whose retention time has passed. */
  sweep(now = Date.now()): void {
    for (const r of this.records.values()) {
      if (r.removedAt || Date.parse(r.savedAt) + this.opts.retentionMs > now) continue;
      this.remove(r, `its retention time of ${formatRetention(this.opts.retentionMs)} had passed (bytenite agent --outputs-retention DURATION)`);
    }
  }

  /**
   * Makes room for `more` bytes of an archive that has `so` far: fetched outputs are removed, oldest fetch
   * first, while the store would pass its budget; if that is not enough the archive is refused.
   */
  private makeRoom(sofar: number, more: number): void {
    const budget = this.opts.budgetBytes;
    let used = this.usage().usedBytes;
    if (used + more <= budget) return;
    const fetched = [...this.records.values()].filter((r) => !r.removedAt && r.fetchedAt).sort((a, b) => a.fetchedAt!.localeCompare(b.fetchedAt!));
    for (const r of fetched) {
      if (used + more <= budget) return;
      used -= r.tarBytes;
      this.remove(r, `room was needed for newer outputs within the outputs budget of ${formatBytes(budget)}, and these had been fetched`);
    }
    if (used + more <= budget) return;
    const u = this.usage();
    const held = u.usedBytes - sofar;
    throw new OutputsNotKept(
      `outputs not kept: they passed ${formatBytes(sofar + more)}, more than the outputs budget of ${formatBytes(budget)} allows` +
        (held > 0 ? ` with ${formatBytes(held)} already held by ${u.unfetched} run(s) whose outputs no client has fetched yet` : '') +
        '; raise it with `bytenite agent --outputs-budget SIZE`',
    );
  }

  private remove(r: OutputRecord, why: string): void {
    rmSync(this.tarOf(r.runId), { force: true });
    r.removedAt = new Date().toISOString();
    r.removedWhy = why;
    this.writeRecord(r);
  }

  private put(r: OutputRecord): void {
    this.records.set(r.runId, r);
    this.writeRecord(r);
  }

  private writeRecord(r: OutputRecord): void {
    const file = path.join(this.dir, `${r.runId}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(r), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  private adoptLegacy(runsDir: string): void {
    for (const id of readdirSync(runsDir)) {
      const old = path.join(runsDir, id, 'outputs.tar');
      if (this.records.has(id) || !existsSync(old)) continue;
      let tenant = 'default';
      let files = 0;
      let bytes = 0;
      try {
        const rec = JSON.parse(readFileSync(path.join(runsDir, id, 'run.json'), 'utf8'));
        tenant = rec.tenant ?? 'default';
        files = rec.final?.outputs?.files ?? 0;
        bytes = rec.final?.outputs?.bytes ?? 0;
      } catch {
        /* no readable record: kept for the default tenant */
      }
      renameSync(old, this.tarOf(id));
      this.put({ runId: id, tenant, files, bytes, tarBytes: statSync(this.tarOf(id)).size, savedAt: new Date().toISOString() });
    }
  }
}
