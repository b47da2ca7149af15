/**
 * What one local source of a build sends over FileSync: the manifest's entries under the source's root, after
 * the engine's include/exclude patterns and follow-paths, in fsutil's walk order, each with the Stat the
 * engine compares against its kept copy. Nothing here touches the disk: the contents stay in the store.
 */
import { createHash } from 'node:crypto';
import type { ManifestEntry } from '../protocol';
import { PatternMatcher, cleanPath } from './patternMatcher';
import { GoMode, type Stat } from './protos';

export interface SyncEntry {
  stat: Stat;
  /** The content to send when the engine asks (regular files only). */
  content?: { sha256: string; size: number };
}

export interface SyncFilter {
  includePatterns?: readonly string[];
  excludePatterns?: readonly string[];
  followPaths?: readonly string[];
}

/** Orders `/` paths as fsutil walks them: depth first, names within a folder by their UTF-8 bytes. */
export function walkOrderKey(p: string): Buffer {
  // With `/` as the lowest byte, comparing whole paths byte by byte compares them segment by segment.
  return Buffer.from(p.replaceAll('/', '\0'), 'utf8');
}

/**
 * A modification time that is a function of the content alone (its SHA-256): unchanged content keeps its
 * time between builds whatever happened to the file on the client (a checkout, a touch), changed content gets
 * another one. The engine re-reads a file when size, time, mode, owner or link differ, and never compares
 * contents, so this makes its diff exact. 50 bits of the hash go in (seconds within ~12 days of the epoch
 * and the nanoseconds); two contents of one size meeting on all 50 bits is the only way to a stale file.
 * Files therefore show dates in January 1970 in the image, as reproducible builds (SOURCE_DATE_EPOCH=0) do.
 */
export function contentTime(sha256: string): bigint {
  const h = BigInt(`0x${sha256.slice(0, 16)}`);
  const seconds = h >> 44n; // 20 bits
  const nanos = (h & 0x3fffffffn) % 1_000_000_000n; // 30 bits
  return seconds * 1_000_000_000n + nanos;
}

function goMode(e: ManifestEntry): number {
  let m = e.mode & 0o777;
  if (e.mode & 0o4000) m |= GoMode.setuid;
  if (e.mode & 0o2000) m |= GoMode.setgid;
  if (e.mode & 0o1000) m |= GoMode.sticky;
  if (e.type === 'dir') m |= GoMode.dir;
  if (e.type === 'symlink') m |= GoMode.symlink;
  return m >>> 0;
}

function toStat(e: ManifestEntry, rel: string): Stat {
  // uid/gid 0 as docker's CLI sends them: the engine's cache then does not depend on who uploaded.
  const base = { path: rel, mode: goMode(e), uid: 0, gid: 0 };
  switch (e.type) {
    case 'file': return { ...base, size: e.size, modTime: contentTime(e.sha256) };
    case 'symlink': {
      const t = createHash('sha256').update(e.linkTarget).digest('hex');
      return { ...base, size: Buffer.byteLength(e.linkTarget), modTime: contentTime(t), linkname: e.linkTarget };
    }
    case 'dir': return { ...base, modTime: 0n };
  }
}

/**
 * The follow-paths and, for each that crosses a symlink inside the source, the link's target too (fsutil
 * follows those links, so `COPY link/x` sends what the link points to). Targets outside the source are
 * dropped: the agent never serves a path that is not an entry of the context.
 */
function followLinks(byPath: ReadonlyMap<string, ManifestEntry>, paths: readonly string[]): string[] {
  const out = new Set<string>();
  const visit = (p: string, depth: number): void => {
    p = cleanPath(p).replace(/^\/+/, '');
    if (p === '.' || p.startsWith('../') || p === '..' || depth > 40 || out.has(p)) return;
    out.add(p);
    const segs = p.split('/');
    for (let i = 1; i <= segs.length; i++) {
      const prefix = segs.slice(0, i).join('/');
      const e = byPath.get(prefix);
      if (e?.type !== 'symlink') continue;
      out.add(prefix); // the link itself travels too
      const dir = segs.slice(0, i - 1).join('/');
      const target = e.linkTarget.startsWith('/') ? e.linkTarget : `${dir ? `${dir}/` : ''}${e.linkTarget}`;
      visit([target, ...segs.slice(i)].join('/'), depth + 1);
      return;
    }
  };
  for (const p of paths) visit(p, 0);
  return [...out];
}

/**
 * The entries of the source rooted at `root` ('' for the whole context), filtered as fsutil's walker
 * filters: an excluded folder is skipped whole unless an exception may bring back something below it; a
 * folder left out by the patterns is still sent, first, when something inside it is sent.
 */
export function syncEntries(manifest: readonly ManifestEntry[], root: string, filter: SyncFilter = {}): SyncEntry[] {
  const prefix = root ? `${root}/` : '';
  const byPath = new Map<string, ManifestEntry>();
  for (const e of manifest) {
    if (!prefix || e.path.startsWith(prefix)) byPath.set(e.path.slice(prefix.length), e);
  }
  // A manifest may leave out folders that only hold other entries: the engine needs each parent first.
  for (const p of [...byPath.keys()]) {
    const segs = p.split('/');
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i).join('/');
      if (!byPath.has(dir)) byPath.set(dir, { type: 'dir', path: `${prefix}${dir}`, mode: 0o755 });
    }
  }
  const includes = [...(filter.includePatterns ?? [])];
  if (filter.followPaths?.length) includes.push(...followLinks(byPath, filter.followPaths));
  const include = includes.length ? new PatternMatcher(includes) : undefined;
  const exclude = filter.excludePatterns?.length ? new PatternMatcher(filter.excludePatterns) : undefined;

  const ordered = [...byPath.keys()].map((p) => ({ p, k: walkOrderKey(p) })).sort((a, b) => Buffer.compare(a.k, b.k));
  const out: SyncEntry[] = [];
  /** Folders on the path to the current entry: sent already, waiting to be sent if a child is, or skipped whole. */
  const stack: { path: string; state: 'sent' | 'lazy' | 'skip' }[] = [];
  for (const { p } of ordered) {
    while (stack.length && !p.startsWith(`${stack[stack.length - 1].path}/`)) stack.pop();
    if (stack.some((d) => d.state === 'skip')) continue;
    const e = byPath.get(p)!;
    const isDir = e.type === 'dir';
    let state: 'sent' | 'lazy' | 'skip' = 'sent';
    if (include && !include.matchesOrParentMatches(p)) {
      state = isDir && include.mayMatchBelow(p, false) ? 'lazy' : 'skip';
    }
    if (state === 'sent' && exclude?.matchesOrParentMatches(p)) {
      state = isDir && exclude.mayMatchBelow(p, true) ? 'lazy' : 'skip';
    }
    if (state === 'sent') {
      for (const d of stack) {
        if (d.state !== 'lazy') continue;
        out.push({ stat: toStat(byPath.get(d.path)!, d.path) });
        d.state = 'sent';
      }
      out.push({ stat: toStat(e, p), content: e.type === 'file' ? { sha256: e.sha256, size: e.size } : undefined });
    }
    if (isDir) stack.push({ path: p, state });
  }
  return out;
}
