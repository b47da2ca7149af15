/**
 * The SHA-256 of a context's files, remembered from one run to the next by what lstat says of each file (size,
 * mtime, ctime, inode, device), in the user's cache folder: a warm run of an unchanged context learns its digest
 * without reading the files again (a 200 MB context is read and hashed in about a second here; a small one saves
 * a few ms of the CLI's start). A file whose timestamps are less than RACY_MS old is hashed every time and not
 * remembered: a second write within the same clock tick would leave them unchanged, so they cannot vouch for
 * its content yet (git treats its "racy" index entries the same way). BYTENITE_HASH_CACHE=0 turns it off.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const RACY_MS = 3000;
const FORMAT = 1;

interface CacheFile {
  format: number;
  root: string;
  /** Path in the context -> [stat key, sha256]. */
  files: Record<string, [string, string]>;
}

export class HashCache {
  private readonly seen = new Map<string, [string, string]>();
  private changed = false;

  private constructor(
    private readonly root: string,
    private readonly file: string | undefined,
    private readonly known: Map<string, [string, string]>,
  ) {}

  /** The cache of the context folder `root` (absolute); an empty one when there is none or it cannot be read. */
  static async open(root: string): Promise<HashCache> {
    if (process.env.BYTENITE_HASH_CACHE === '0') return new HashCache(root, undefined, new Map());
    const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
    const file = path.join(base, 'bytenite', 'hashes', `${createHash('sha256').update(root).digest('hex').slice(0, 32)}.json`);
    try {
      const data = JSON.parse(await readFile(file, 'utf8')) as CacheFile;
      if (data.format === FORMAT && data.root === root) return new HashCache(root, file, new Map(Object.entries(data.files)));
    } catch {
      // None yet, or unreadable: every file is hashed and the cache written anew.
    }
    return new HashCache(root, file, new Map());
  }

  /** The remembered hash of the file at `rel`, if `st` (its lstat) is what it was when it was hashed. */
  lookup(rel: string, st: Stats): string | undefined {
    const hit = this.known.get(rel);
    if (!hit || hit[0] !== statKey(st)) return undefined;
    this.seen.set(rel, hit);
    return hit[1];
  }

  /** Remembers the hash of the file at `rel`, read after `st` was taken; not when its timestamps are too fresh. */
  remember(rel: string, st: Stats, sha256: string): void {
    this.changed = true;
    if (Date.now() - Math.max(st.mtimeMs, st.ctimeMs) < RACY_MS) return;
    this.seen.set(rel, [statKey(st), sha256]);
  }

  /** Writes what this listing saw (files gone since are dropped), when anything differs. Never throws. */
  async save(): Promise<void> {
    if (!this.file || (!this.changed && this.seen.size === this.known.size)) return;
    const data: CacheFile = { format: FORMAT, root: this.root, files: Object.fromEntries(this.seen) };
    try {
      await mkdir(path.dirname(this.file), { recursive: true });
      // Written whole under a temporary name, then renamed: a concurrent run reads the old cache or the new one.
      const tmp = `${this.file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(data));
      await rename(tmp, this.file);
    } catch {
      // A cache we cannot write costs the next run its hashing, nothing else.
    }
  }
}

/** Changes whenever the content can have changed: a write moves mtime and ctime, a replacement the inode. */
function statKey(st: Stats): string {
  return `${st.size}/${st.mtimeMs}/${st.ctimeMs}/${st.ino}/${st.dev}`;
}
