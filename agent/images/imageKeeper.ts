/**
 * Keeps the agent's images and build cache within their budgets (`bytenite agent --image-budget SIZE
 * --build-cache-budget SIZE`): remembers when each digest was last run or built, collects at start and
 * after builds (in the background), and says why a run whose image it removed starts cold.
 *
 * What it removes: only images this agent made (its id in label io.bytenite.agent), never forced, never
 * one a run, a hot container or a waiting run needs; the legacy builder's leftover step images that this
 * agent's builds made, beyond the build-cache budget; BuildKit's cache pruned down to that budget, once this
 * agent builds with BuildKit (that cache is the engine's, unlabelled: an agent that never used it leaves it be).
 */
import type { Logger } from 'pino';
import { ImageRecord } from './imageRecord';
import { planCache, planImages, type ImageFacts } from './imagePolicy';
import type { ImageSnapshot, ImageStore } from './imageStore';

const GiB = 1024 ** 3;
/** Without a disk to measure (a remote engine): stated in the start-up log. */
export const FIXED_IMAGE_BUDGET = 20 * GiB;
export const FIXED_BUILD_CACHE_BUDGET = 5 * GiB;
/** Shares of the engine's disk: images and build cache leave the rest to outputs, the journal and the system. */
const IMAGE_SHARE = 0.25;
const CACHE_SHARE = 0.1;
/** Removing an image can make layers it shared unique to another: measure again, a few times at most. */
const MAX_ROUNDS = 4;
/** How long a stopping agent waits for a collection in progress. */
const CLOSE_WAIT_MS = 5000;

export interface ImageUsage {
  /** Unique bytes of this agent's images (what removing them all would free). */
  imageBytes: number;
  imageBudgetBytes: number;
  /** This agent's leftover build steps (legacy builder) and BuildKit's cache. */
  buildCacheBytes: number;
  buildCacheBudgetBytes: number;
}

export interface CollectResult extends ImageUsage {
  removedImages: number;
  removedCache: number;
  freedBytes: number;
}

export interface ImageKeeperOptions {
  agentId: string;
  dataDir: string;
  /** --image-budget in bytes; default from the engine's disk. */
  imageBudgetBytes?: number;
  /** --build-cache-budget in bytes; default from the engine's disk. */
  buildCacheBudgetBytes?: number;
  log: Logger;
}

export class ImageKeeper {
  private readonly record: ImageRecord;
  private needed: () => ReadonlySet<string> = () => new Set();
  private running?: Promise<CollectResult>;
  private again = false;
  private closed = false;
  /** A build ended since the last collection: collect once the run's container has started. */
  private due = false;
  private scheduled = false;

  private constructor(
    private readonly store: ImageStore, private readonly opts: ImageKeeperOptions,
    readonly imageBudgetBytes: number, readonly buildCacheBudgetBytes: number,
    /** Each budget and how it was set, for the start-up log: `63.0 GiB (a quarter of the engine's 252.0 GiB disk, /var/lib/docker)`. */
    readonly described: { imageBudget: string; buildCacheBudget: string },
  ) {
    this.record = ImageRecord.in(opts.dataDir);
    store.events = {
      made: (id) => this.record.madeByBuild(id),
      buildEnded: (ok, buildKit) => {
        if (buildKit) this.record.builtWithBuildKit();
        this.save(); // the images it made are this agent's build cache, also after a restart
        if (ok) this.due = true;
        else this.collectSoon();
      },
      containerStarted: () => {
        if (!this.due) return;
        this.due = false;
        this.collectSoon();
      },
    };
  }

  static async open(store: ImageStore, opts: ImageKeeperOptions): Promise<ImageKeeper> {
    const disk = opts.imageBudgetBytes === undefined || opts.buildCacheBudgetBytes === undefined
      ? await store.diskBytes().catch(() => undefined)
      : undefined;
    const pick = (given: number | undefined, flag: string, share: number, fixed: number): [number, string] => {
      if (given !== undefined) return [given, `${formatSize(given)} (${flag})`];
      if (!disk) return [fixed, `${formatSize(fixed)} (fixed default: the engine's disk is not on this machine; ${flag} SIZE sets it)`];
      const bytes = Math.floor(disk.bytes * share);
      return [bytes, `${formatSize(bytes)} (${share * 100}% of the engine's ${formatSize(disk.bytes)} disk at ${disk.dir}; ${flag} SIZE sets it)`];
    };
    const [image, imageText] = pick(opts.imageBudgetBytes, '--image-budget', IMAGE_SHARE, FIXED_IMAGE_BUDGET);
    const [cache, cacheText] = pick(opts.buildCacheBudgetBytes, '--build-cache-budget', CACHE_SHARE, FIXED_BUILD_CACHE_BUDGET);
    return new ImageKeeper(store, opts, image, cache, { imageBudget: imageText, buildCacheBudget: cacheText });
  }

  /** The images that must stay: those of runs waiting, starting or running (the keeper asks before each removal). */
  neededBy(fn: () => ReadonlySet<string>): void {
    this.needed = fn;
  }

  /** A run or a build of this digest: its image is now the most recently used. */
  used(digest: string): void {
    this.record.used(digest);
    this.save();
  }

  /** Why a run of this digest starts cold, when the keeper removed its image; undefined otherwise. */
  coldReason(digest: string): string | undefined {
    const r = this.record.removal(digest);
    if (!r) return undefined;
    return `cold: its image was removed on ${formatTime(r.at)} to stay within the image budget (${formatSize(r.budgetBytes)}; bytenite agent --image-budget SIZE)`;
  }

  /** Collects in the background, soon; a collection in progress is followed by one more. */
  collectSoon(): void {
    if (this.closed || this.scheduled) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.closed) return;
      this.collect().catch((err) => this.opts.log.warn({ err: (err as Error).message }, 'could not keep images within their budget'));
    });
  }

  /** Removes what is beyond the budgets now (one collection at a time); resolves with what is left. */
  collect(): Promise<CollectResult> {
    if (this.running) return this.running.then(() => this.collect(), () => this.collect());
    this.running = this.collectOnce().finally(() => {
      this.running = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        this.collectSoon();
      }
    });
    return this.running;
  }

  /** Disk used by this agent's images and build cache, against their budgets (for `bytenite hardware`, the sidebar). */
  async usage(): Promise<ImageUsage> {
    return this.usageOf(await this.store.snapshot(this.opts.agentId));
  }

  /** No more collections after this (the one in progress finishes). */
  async close(): Promise<void> {
    this.closed = true;
    // Not for long: a collection stopped halfway is taken up by the next start.
    await Promise.race([this.running?.catch(() => undefined), new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
    this.save();
  }

  private usageOf(s: ImageSnapshot): ImageUsage {
    const sum = (xs: Array<{ uniqueBytes?: number; bytes?: number }>) => xs.reduce((n, x) => n + (x.uniqueBytes ?? x.bytes ?? 0), 0);
    return {
      imageBytes: sum(s.images) + sum(s.dangling), imageBudgetBytes: this.imageBudgetBytes,
      buildCacheBytes: sum(this.ownCache(s)) + this.buildKitBytes(s), buildCacheBudgetBytes: this.buildCacheBudgetBytes,
    };
  }

  private buildKitBytes(s: ImageSnapshot): number {
    return this.record.buildKit ? s.buildKitBytes : 0;
  }

  /** The leftover step images this agent's builds made (the record says which), dated by that record:
   * the engine's Created is whole seconds, so two builds failing within one second would tie. */
  private ownCache(s: ImageSnapshot) {
    return s.untagged.flatMap((c) => {
      const madeMs = this.record.madeAt(c.id);
      return madeMs === undefined ? [] : [{ ...c, createdMs: Math.max(c.createdMs, madeMs) }];
    });
  }

  private async collectOnce(): Promise<CollectResult> {
    let removedImages = 0;
    let removedCache = 0;
    let freedBytes = 0;
    let snap = await this.store.snapshot(this.opts.agentId);
    const keep = () => new Set([...this.needed(), ...this.store.pending()]);
    const drop = async (i: ImageFacts | { id: string; bytes: number }): Promise<boolean> => {
      // Asked again just before: a run may have been given this image since the plan was made.
      if (keep().has(i.id) || !(await this.store.remove(i.id))) return false;
      freedBytes += 'uniqueBytes' in i ? i.uniqueBytes : i.bytes;
      return true;
    };
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let removed = 0;
      for (const d of snap.dangling) if (await drop(d)) removed++;
      const plan = planImages(snap.images, this.imageBudgetBytes, (d) => this.record.lastUsed(d), keep());
      for (const i of plan.remove) {
        if (!(await drop(i))) continue;
        removed++;
        this.record.removed(i.digest, { at: Date.now(), budgetBytes: this.imageBudgetBytes });
        this.opts.log.info({ image: i.id, digest: i.digest, bytes: i.uniqueBytes }, 'removed an image to stay within the image budget');
      }
      removedImages += removed;
      this.save();
      if (removed === 0) break;
      snap = await this.store.snapshot(this.opts.agentId);
    }
    // A build's step images are its next step's base: never removed while one is in progress (the next
    // collection, when the last build ends, takes them).
    if (!this.store.building()) {
      const cache = planCache(this.ownCache(snap), this.buildCacheBudgetBytes);
      for (const c of cache.remove) if (await drop(c)) removedCache++;
      let pruned = false;
      if (this.buildKitBytes(snap) > this.buildCacheBudgetBytes - cache.keptBytes) {
        freedBytes += await this.store.pruneBuildKit(Math.max(0, this.buildCacheBudgetBytes - cache.keptBytes));
        pruned = true;
      }
      if (removedCache > 0 || pruned) snap = await this.store.snapshot(this.opts.agentId);
      this.record.forgetMade((id) => snap.allIds.has(id));
    }
    this.save();
    const usage = this.usageOf(snap);
    if (removedImages || removedCache) this.opts.log.info({ removedImages, removedCache, freedBytes, ...usage }, 'images and build cache collected');
    return { ...usage, removedImages, removedCache, freedBytes };
  }

  private save(): void {
    try {
      this.record.save();
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not write images.json');
    }
  }
}

/** `512 MiB`, `2.0 GiB`: as a user would type it back to the flag. */
export function formatSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}

/** `2026-12-01 00:12 UTC` */
function formatTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}
