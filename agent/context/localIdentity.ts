/**
 * Whether the agent sees the very folder the client listed (the local fast path: the agent then reads the
 * contents itself instead of being sent them). The client describes the folder and a few of its entries by
 * what `lstat` says of them (device, inode, change and birth times, to the nanosecond); the agent stats the
 * same paths and compares. Another machine, another mount namespace, a copy of the folder, or a file changed
 * in between all differ somewhere, and the run then falls back to the upload. Nothing is written into the
 * user's folder to prove it.
 */
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { BigIntStats } from 'node:fs';
import type { LocalContext } from '../protocol';
import type { ContextEntry } from './listContext';

/** Entries described besides the Dockerfile: spread over the listing, so a partial copy is told apart too. */
const SAMPLES = 7;

function identityOf(s: BigIntStats): LocalContext['folder'] {
  return { dev: String(s.dev), ino: String(s.ino), ctimeNs: String(s.ctimeNs), birthtimeNs: String(s.birthtimeNs) };
}

/**
 * The client's description of `root` (as listed in `entries`), or undefined when it cannot be made (a file
 * went away since the listing: the upload path then reports what is wrong).
 */
export async function describeLocalContext(root: string, entries: readonly ContextEntry[], dockerfile: string): Promise<LocalContext | undefined> {
  try {
    const real = await realpath(root);
    const picked = new Set<string>([dockerfile]);
    for (let i = 0; i < SAMPLES && entries.length; i++) picked.add(entries[Math.floor((i * entries.length) / SAMPLES)].path);
    const described = await Promise.all([...picked].map(async (p) => ({ path: p, ...identityOf(await lstat(path.join(real, p), { bigint: true })) })));
    return { path: real, folder: identityOf(await lstat(real, { bigint: true })), entries: described };
  } catch {
    return undefined;
  }
}

const same = (a: LocalContext['folder'], b: LocalContext['folder']): boolean =>
  a.dev === b.dev && a.ino === b.ino && a.ctimeNs === b.ctimeNs && a.birthtimeNs === b.birthtimeNs;

/**
 * On the agent: whether `local` names a folder this process sees as the client described it. The path must
 * be real (no symlink on the way, so what the agent opens below it is what the client listed), and every
 * described entry must be found with the same identity. Any error is a "no": the upload path is always right.
 */
export async function seesLocalContext(local: LocalContext): Promise<boolean> {
  try {
    if (path.posix.normalize(local.path) !== local.path || (await realpath(local.path)) !== local.path) return false;
    const folder = await lstat(local.path, { bigint: true });
    if (!folder.isDirectory() || !same(identityOf(folder), local.folder)) return false;
    for (const e of local.entries) {
      if (e.path.split('/').some((s) => s === '..' || s === '.' || s === '')) return false;
      if (!same(identityOf(await lstat(path.join(local.path, e.path), { bigint: true })), e)) return false;
    }
    return true;
  } catch {
    return false;
  }
}
