/**
 * The client's side of the build context: list what `docker build` would send and digest it (the agent may
 * already have the image: a warm start, no upload). An agent with a content store then gets the listing as a
 * manifest and only the contents it lacks; for an older agent, the whole archive is written to upload.
 */
import { createWriteStream } from 'node:fs';
import { lstat, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { WriteEntry } from 'tar';
import { checkDockerfilePath, checkEntries } from './checkContext';
import { canonicalPath, contextDigest } from './digest';
import { archiveMode, listContext, type ContextEntry } from './listContext';

export interface ListedContext {
  /** `RunSpec.contextDigest`. */
  digest: string;
  /** The context folder, absolute. */
  root: string;
  /** What is sent, sorted by path. */
  entries: ContextEntry[];
  /** Total size of the files: `RunSpec.contextBytes` of a manifest upload. */
  bytes: number;
  files: number;
}

export interface PackedContext {
  /** `RunSpec.contextDigest`. */
  digest: string;
  /** Size of the archive: `RunSpec.contextBytes`. */
  bytes: number;
  /** The uncompressed tar to upload; it lives in its own temporary folder until `cleanup()`. */
  tarPath: string;
  files: number;
  cleanup(): Promise<void>;
}

/**
 * Packs `contextDir` for a build of `dockerfile` (relative to `contextDir`) with `buildArgs`. Throws, with a
 * message for the user, when the Dockerfile is not a file inside the context or when the context holds
 * something the agent would refuse (an entry under a symlink, a path twice).
 */
export async function packContext(contextDir: string, dockerfile: string, buildArgs: Record<string, string>): Promise<PackedContext> {
  const { root, entries, digest } = await listForBuild(contextDir, dockerfile, buildArgs);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bytenite-context-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  const tarPath = path.join(dir, 'context.tar');
  try {
    await writeTar(root, entries, tarPath);
    const { size } = await stat(tarPath);
    return { digest, bytes: size, tarPath, files: entries.filter((e) => e.type === 'file').length, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Lists and digests `contextDir` for a build of `dockerfile` (relative to `contextDir`) with `buildArgs`, with
 * the same checks as `packContext`, and writes nothing.
 */
export async function listForBuild(contextDir: string, dockerfile: string, buildArgs: Record<string, string>): Promise<ListedContext> {
  const root = path.resolve(contextDir);
  const rel = await checkDockerfile(root, dockerfile);
  const entries = await listContext(root, rel);
  if (!entries.some((e) => e.path === rel && e.type === 'file')) {
    throw new Error(`The Dockerfile ${JSON.stringify(rel)} would not be sent: a folder on its path is a symlink. Give its real path inside ${root}.`);
  }
  checkEntries(entries);
  let bytes = 0;
  let files = 0;
  for (const e of entries) {
    if (e.type !== 'file') continue;
    bytes += e.size;
    files++;
  }
  return { digest: contextDigest(entries, rel, buildArgs), root, entries, bytes, files };
}

/** The Dockerfile's path, relative and `/`-separated, once it is known to name a file inside the context. */
async function checkDockerfile(root: string, dockerfile: string): Promise<string> {
  const given = path.sep === '\\' ? dockerfile.replaceAll('\\', '/') : dockerfile;
  const problem = checkDockerfilePath(given);
  if (problem) throw new Error(problem);
  const rel = canonicalPath(given) as string;

  const rootStat = await stat(root).catch(() => undefined);
  if (!rootStat?.isDirectory()) throw new Error(`The context folder ${root} does not exist or is not a folder.`);
  const st = await lstat(path.join(root, rel)).catch(() => undefined);
  if (!st) throw new Error(`The Dockerfile ${JSON.stringify(rel)} does not exist in the context folder ${root}.`);
  if (!st.isFile()) {
    const what = st.isDirectory() ? 'a folder' : st.isSymbolicLink() ? 'a symlink' : 'not a regular file';
    throw new Error(`The Dockerfile ${JSON.stringify(rel)} in ${root} is ${what}: give the path of the Dockerfile itself.`);
  }
  return rel;
}

/**
 * Writes exactly the listed entries, in order (no directory recursion), in node-tar's portable form: no owner
 * names or ids, which COPY replaces anyway. node-tar is driven through `Pack` rather than `create()`, which
 * would read a listed name starting with `@` as another archive to splice in.
 *
 * node-tar stats each path again; an entry that no longer matches the listing (its type, mode, size or link
 * target changed since it was hashed) would make the agent's digest differ from ours, so it fails here instead.
 */
async function writeTar(root: string, entries: readonly ContextEntry[], tarPath: string): Promise<void> {
  const listed = new Map(entries.map((e) => [e.path, e]));
  const written = new Set<string>();
  let changed: string | undefined;
  const onWriteEntry = (w: WriteEntry): void => {
    const p = w.path.replace(/\/$/, '');
    written.add(p);
    const e = listed.get(p);
    if (!e || !matchesListing(e, w)) changed ??= p;
  };

  // Loaded here, not at the top: a warm or hot run never packs, and node-tar's load is 6 ms of a CLI start.
  const { Pack } = await import('tar');
  const pack = new Pack({ cwd: root, portable: true, noDirRecurse: true, onWriteEntry });
  // A large buffer keeps node-tar from pausing on every file: about a third faster on a 200 MB context.
  const out = createWriteStream(tarPath, { highWaterMark: 4 << 20 });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: unknown): void => {
      out.destroy();
      reject(err);
    };
    pack.on('error', fail);
    out.on('error', fail);
    out.on('close', resolve);
    pack.pipe(out);
    for (const e of entries) pack.add(e.path);
    pack.end();
  });

  changed ??= entries.find((e) => !written.has(e.path))?.path;
  if (changed !== undefined) {
    throw new Error(`${JSON.stringify(changed)} changed while the build context was being packed: run again once your files are written.`);
  }
}

function matchesListing(e: ContextEntry, w: WriteEntry): boolean {
  const st = w.stat;
  if (!st) return false;
  switch (w.type) {
    case 'File':
      return e.type === 'file' && st.size === e.size && archiveMode(st.mode, false) === e.mode;
    case 'Link': // a second name for a file already written; node-tar zeroes its size
      return e.type === 'file' && archiveMode(st.mode, false) === e.mode;
    case 'Directory':
      return e.type === 'dir' && archiveMode(st.mode, true) === e.mode;
    case 'SymbolicLink':
      return e.type === 'symlink' && w.linkpath === e.linkTarget;
    default:
      return false;
  }
}
