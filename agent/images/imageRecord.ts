/**
 * What the agent remembers about its images across restarts, in one small JSON file of its data folder
 * (`images.json`, written whole to a temporary file and renamed over the old one, so a crash leaves the
 * old or the new file, never half of one): when each digest was last run or built, which digests it
 * removed (when, and under which budget), and the ids of the images its builds made (build cache).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Removal {
  /** ms since the epoch. */
  at: number;
  budgetBytes: number;
}

interface FileShape {
  version: 1;
  lastUsed: Record<string, number>;
  removed: Record<string, Removal>;
  /** Short (12 hex) image id → when a build of this agent made it. */
  made: Record<string, number>;
  /** This agent has built with BuildKit: the engine's BuildKit cache holds its build cache. */
  buildKit?: boolean;
}

/** Bounds that keep the file small over months: the oldest entries go first. */
const MAX_DIGESTS = 5000;
const MAX_MADE = 20_000;
const REMOVAL_KEPT_MS = 180 * 86_400_000;

export class ImageRecord {
  private data: FileShape = { version: 1, lastUsed: {}, removed: {}, made: {} };
  private dirty = false;

  constructor(private readonly file: string) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<FileShape>;
      if (parsed && parsed.version === 1) {
        this.data = {
          version: 1, lastUsed: { ...parsed.lastUsed }, removed: { ...parsed.removed }, made: { ...parsed.made }, buildKit: parsed.buildKit === true,
        };
      }
    } catch {
      /* none yet, or unreadable: start afresh (only LRU order and cold reasons are lost) */
    }
  }

  static in(dataDir: string): ImageRecord {
    return new ImageRecord(path.join(dataDir, 'images.json'));
  }

  lastUsed(digest: string): number | undefined {
    return this.data.lastUsed[digest];
  }

  /** A run or a build of `digest`: it is the most recently used now, and no longer a removed one. */
  used(digest: string, at = Date.now()): void {
    this.data.lastUsed[digest] = at;
    delete this.data.removed[digest];
    this.dirty = true;
  }

  removal(digest: string): Removal | undefined {
    return this.data.removed[digest];
  }

  removed(digest: string, removal: Removal): void {
    this.data.removed[digest] = removal;
    delete this.data.lastUsed[digest];
    this.dirty = true;
  }

  madeByBuild(shortId: string, at = Date.now()): void {
    this.data.made[shortId.replace(/^sha256:/, '').slice(0, 12)] = at;
    this.dirty = true;
  }

  get buildKit(): boolean {
    return this.data.buildKit === true;
  }

  builtWithBuildKit(): void {
    if (this.data.buildKit) return;
    this.data.buildKit = true;
    this.dirty = true;
  }

  /** When a build of this agent made the image with this (full or short) id, if one did. */
  madeAt(id: string): number | undefined {
    return this.data.made[id.replace(/^sha256:/, '').slice(0, 12)];
  }

  /** Forgets made images the engine no longer has (`exists` answers for a short id). */
  forgetMade(exists: (shortId: string) => boolean): void {
    for (const id of Object.keys(this.data.made)) {
      if (!exists(id)) {
        delete this.data.made[id];
        this.dirty = true;
      }
    }
  }

  /** Writes the file if anything changed since the last write. */
  save(now = Date.now()): void {
    if (!this.dirty) return;
    const d = this.data;
    for (const [k, r] of Object.entries(d.removed)) if (now - r.at > REMOVAL_KEPT_MS) delete d.removed[k];
    trim(d.lastUsed, MAX_DIGESTS);
    trim(d.made, MAX_MADE);
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(d), { mode: 0o600 });
    renameSync(tmp, this.file);
    this.dirty = false;
  }
}

/** Keeps the `max` newest entries of a map of times. */
function trim(m: Record<string, number>, max: number): void {
  const keys = Object.keys(m);
  if (keys.length <= max) return;
  keys.sort((a, b) => m[a] - m[b]);
  for (const k of keys.slice(0, keys.length - max)) delete m[k];
}
