/**
 * What a build context holds after `.dockerignore`: the entries the client sends, listed the way the docker CLI
 * (20.10, legacy builder) picks them, so a run sees the same files as `docker build` on the same folder.
 */
import ignore, { type Ignore } from '@balena/dockerignore';
import { createHash } from 'node:crypto';
import { lstat, open, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { canonicalPath, comparePaths } from './digest';
import { HashCache } from './hashCache';

interface EntryBase {
  /** Relative, `/`-separated, no `.` or `..` segments, no trailing slash. */
  path: string;
  /** Permission bits as they travel in the archive (see `archiveMode`). */
  mode: number;
  /** Bytes of content; 0 for directories and symlinks. */
  size: number;
  /** Modification time in whole seconds, when listed from disk: it travels to the image but is no part of the digest. */
  mtime?: number;
}
export interface FileEntry extends EntryBase { type: 'file'; sha256: string }
export interface DirEntry extends EntryBase { type: 'dir' }
export interface SymlinkEntry extends EntryBase { type: 'symlink'; linkTarget: string }
export type ContextEntry = FileEntry | DirEntry | SymlinkEntry;

/** Files hashed at once: enough to keep a disk busy, few enough to stay far from the open-file limit. */
const HASH_CONCURRENCY = 8;
const READ_CHUNK = 1024 * 1024;
const UTF8_BOM = '\uFEFF';

/**
 * Lists `contextDir` as the docker CLI would send it for `docker build -f <dockerfile> <contextDir>`, sorted by
 * path. Symlinks are listed, never followed. Sockets, FIFOs and devices are left out: the CLI drops sockets and
 * the agent refuses the others, and none of them can be part of an image's content anyway.
 */
export async function listContext(contextDir: string, dockerfile: string): Promise<ContextEntry[]> {
  const root = path.resolve(contextDir);
  const rules = await readDockerignore(root, dockerfile);
  const found: { rel: string; abs: string }[] = [];
  await walk(root, '', rules, found);
  const hashes = await HashCache.open(root);
  const entries = await mapLimit(found, HASH_CONCURRENCY, () => Buffer.allocUnsafe(READ_CHUNK), (item, buf) => toEntry(item, buf, hashes));
  await hashes.save();
  return entries.filter((e): e is ContextEntry => e !== undefined).sort((a, b) => comparePaths(a.path, b.path));
}

interface Rules {
  matcher: Ignore;
  /** Cleaned exception patterns (without the `!`): the CLI walks into an ignored directory only for these. */
  exceptions: string[];
}

/**
 * Reads `.dockerignore` as the CLI does (UTF-8 BOM dropped, `#` comments, patterns cleaned) and, like the CLI,
 * adds exceptions for `.dockerignore` and the Dockerfile when a pattern would drop them: both are always sent,
 * and the engine removes them from what COPY sees when `.dockerignore` names them.
 */
async function readDockerignore(root: string, dockerfile: string): Promise<Rules> {
  let text = '';
  try {
    text = await readFile(path.join(root, '.dockerignore'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text.startsWith(UTF8_BOM)) text = text.slice(1);
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (!line.startsWith('#') && line.trim() === '!') {
      throw new Error(`.dockerignore line ${i + 1}: "!" alone is not a pattern; remove it or add a path after it`);
    }
  });

  // Case-sensitive, as docker matches on Linux (the library defaults to ignoring case). One known difference
  // from the 20.10 CLI, kept on purpose: it tests a `**` pattern against one parent folder only, so inside a
  // folder opened by an exception it sends files that `**/cache` should drop; the library drops them, as newer
  // docker CLIs (moby's fixed matcher) and BuildKit do.
  const matcher = ignore({ ignorecase: false }).add(lines);
  try {
    matcher.ignores('.'); // compiles every pattern now, so a bad one fails here with a clear message
  } catch (err) {
    throw new Error(`.dockerignore has a pattern docker cannot read: ${(err as Error).message}`);
  }
  const exceptions = lines.map(cleanException).filter((p): p is string => p !== undefined);

  const keep = (p: string): void => {
    if (matcher.ignores(p)) {
      matcher.add(`!${p}`);
      exceptions.push(p);
    }
  };
  keep('.dockerignore');
  keep(canonicalPath(dockerfile.split(path.sep).join('/')) ?? dockerfile);
  return { matcher, exceptions };
}

/** The pattern of an exception line, cleaned as docker cleans it; undefined for any other line. */
function cleanException(line: string): string | undefined {
  if (line.startsWith('#')) return undefined;
  const trimmed = line.trim();
  if (!trimmed.startsWith('!')) return undefined;
  let p = trimmed.slice(1).trim();
  if (p === '') return undefined;
  p = path.posix.normalize(p);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
  return p;
}

// Depth-first walk in the CLI's way: an ignored directory is skipped whole unless an exception pattern starts
// with its path (`!a/b/keep` opens `a` and `a/b`); then it is walked but not sent itself, and the engine
// creates it when it unpacks what is under it. A wildcard exception such as `!**/keep` opens no ignored
// directory: `docker build` does not send what it would re-include there either (checked against the engine
// in test/agent/dockerignore.test.ts).
async function walk(root: string, relDir: string, rules: Rules, out: { rel: string; abs: string }[]): Promise<void> {
  const absDir = relDir === '' ? root : path.join(root, relDir);
  const children = await readdir(absDir, { withFileTypes: true });
  for (const child of children) {
    const rel = relDir === '' ? child.name : `${relDir}/${child.name}`;
    const abs = path.join(absDir, child.name);
    if (!rules.matcher.ignores(rel)) {
      out.push({ rel, abs });
      if (child.isDirectory()) await walk(root, rel, rules, out);
    } else if (child.isDirectory() && rules.exceptions.some((p) => `${p}/`.startsWith(`${rel}/`))) {
      await walk(root, rel, rules, out);
    }
  }
}

async function toEntry(item: { rel: string; abs: string }, buf: Buffer, hashes: HashCache): Promise<ContextEntry | undefined> {
  const st = await lstat(item.abs);
  const mtime = Math.floor(st.mtimeMs / 1000);
  if (st.isDirectory()) return { type: 'dir', path: item.rel, mode: archiveMode(st.mode, true), size: 0, mtime };
  if (st.isSymbolicLink()) {
    return { type: 'symlink', path: item.rel, mode: archiveMode(st.mode, false), size: 0, linkTarget: await readlink(item.abs), mtime };
  }
  if (!st.isFile()) return undefined;
  const known = hashes.lookup(item.rel, st);
  const { sha256, size } = known ? { sha256: known, size: st.size } : await hashFile(item.abs, buf);
  if (size !== st.size) throw new Error(`${item.rel} changed while it was being read; run again once it is written`);
  if (!known) hashes.remember(item.rel, st, sha256);
  return { type: 'file', path: item.rel, mode: archiveMode(st.mode, false), size, sha256, mtime };
}

/** One streaming read per file through a buffer the worker reuses: no whole-file buffering. */
async function hashFile(abs: string, buf: Buffer): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const fh = await open(abs, 'r');
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * The permission bits the archive will carry. The context tar is written in node-tar's portable mode, which
 * keeps owner read/write, drops group/other write, and makes readable directories listable; the digest must
 * describe what is sent (the agent computes it from the archive), so the listing applies the same rule.
 */
export function archiveMode(statMode: number, isDir: boolean): number {
  let mode = ((statMode & 0o7777) | 0o600) & ~0o22;
  if (isDir) {
    if (mode & 0o400) mode |= 0o100;
    if (mode & 0o40) mode |= 0o10;
    if (mode & 0o4) mode |= 0o1;
  }
  return mode;
}

/** Maps with at most `limit` calls in flight; each worker gets its own scratch value (a read buffer). */
async function mapLimit<T, S, R>(items: T[], limit: number, scratch: () => S, fn: (item: T, s: S) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    const s = scratch();
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
