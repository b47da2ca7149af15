/**
 * The contents of a local context (see localIdentity.ts), read from the client's own folder when the engine
 * asks for them, where a manifest upload would read them from the content store. Each content is read from
 * the first file of the manifest that has it. Before each read the file is checked to be what the manifest
 * says: a regular file of the listed size and time (never a symlink: lstat), in a folder whose real path is the one
 * the manifest implies (no folder on the way swapped for a link), so the agent never reads outside the folder.
 * Between that check and the read only someone who can write into the owner's folder could swap a path;
 * that is the owner, who is the only one allowed this path (see Session).
 */
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { ManifestEntry } from '../protocol';
import type { ContentSource } from './assembleContext';
import { BadContextError } from './checkContext';

export function localSource(root: string, entries: readonly ManifestEntry[]): ContentSource {
  const bySha = new Map<string, { rel: string; size: number; mtime?: number }>();
  for (const e of entries) if (e.type === 'file' && !bySha.has(e.sha256)) bySha.set(e.sha256, { rel: e.path, size: e.size, mtime: e.mtime });
  /** Real path of each folder checked, by its path in the context: 2,000 files sit in a few dozen folders. */
  const folders = new Map<string, Promise<boolean>>();
  const folderIsInside = (dir: string): Promise<boolean> => {
    let p = folders.get(dir);
    if (!p) {
      const want = dir === '.' ? root : path.join(root, dir);
      p = realpath(want).then((real) => real === want, () => false);
      folders.set(dir, p);
    }
    return p;
  };
  const changed = (rel: string) => new BadContextError(
    `${JSON.stringify(rel)} changed while the build context was being sent: run again once your files are written.`, rel);
  return {
    path: (sha) => path.join(root, bySha.get(sha)?.rel ?? ''),
    arrival: async (sha) => {
      const f = bySha.get(sha);
      if (!f) throw new BadContextError(`no file of the context has content ${sha.slice(0, 12)}…`);
      if (!(await folderIsInside(path.posix.dirname(f.rel)))) throw changed(f.rel);
      const s = await lstat(path.join(root, f.rel)).catch(() => undefined);
      // The engine is told a time made from the listed content (syncEntries.ts): a file rewritten since the
      // listing (another second on its clock) must not reach it under that time.
      if (!s?.isFile() || s.size !== f.size || (f.mtime !== undefined && Math.floor(s.mtimeMs / 1000) !== f.mtime)) throw changed(f.rel);
    },
  };
}
