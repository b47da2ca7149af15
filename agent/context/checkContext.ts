/**
 * The agent's check of a received build context: the archive may come from any client, so nothing in it is
 * trusted. It is read (never extracted) to refuse what could reach outside the context once the engine
 * unpacks it, and to recompute the digest the client declared from what actually arrived.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ReadEntry } from 'tar';
import { canonicalPath, contextDigest } from './digest';
import type { ContextEntry, FileEntry } from './listContext';

/** A context the agent refuses; `message` names the entry and is shown to the user as is. */
export class BadContextError extends Error {
  override name = 'BadContextError';
  constructor(message: string, readonly entry?: string) {
    super(message);
  }
}

const q = (s: string): string => JSON.stringify(s);

/** What is wrong with a Dockerfile path given in a run spec; undefined when it is fine. */
export function checkDockerfilePath(p: string): string | undefined {
  if (p === '') return 'The Dockerfile path is empty: give the path of the Dockerfile inside the context folder, e.g. "Dockerfile".';
  if (p.includes('\0')) return `The Dockerfile path ${q(p)} contains a NUL byte: give a plain relative path.`;
  if (p.startsWith('/') || p.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(p)) {
    return `The Dockerfile path ${q(p)} is absolute: give it relative to the context folder, e.g. "Dockerfile".`;
  }
  const canonical = canonicalPath(p);
  if (canonical === undefined) return `The Dockerfile path ${q(p)} leads out of the context folder (..): the Dockerfile must be inside it.`;
  if (canonical === '') return `The Dockerfile path ${q(p)} names the context folder itself: name the Dockerfile in it.`;
  return undefined;
}

/**
 * Reads the context archive at `tarPath` and returns its digest (with `dockerfile` and `buildArgs`, as the
 * client computed it), its file count and its size in bytes. Throws `BadContextError` for an archive the
 * engine must not unpack or cannot build from.
 */
export async function checkContext(
  tarPath: string, dockerfile: string, buildArgs: Record<string, string>,
): Promise<{ digest: string; files: number; bytes: number }> {
  const dockerfileProblem = checkDockerfilePath(dockerfile);
  if (dockerfileProblem) throw new BadContextError(dockerfileProblem);
  const entries = await readEntries(tarPath);
  checkEntries(entries);

  const wanted = canonicalPath(dockerfile) as string;
  const found = entries.find((e) => e.path === wanted);
  if (!found) {
    throw new BadContextError(`The Dockerfile ${q(wanted)} is not in the context archive: check the path, relative to the context folder.`, wanted);
  }
  if (found.type !== 'file') {
    throw new BadContextError(`The Dockerfile ${q(wanted)} is a ${found.type === 'dir' ? 'directory' : 'symlink'} in the context archive: point to the file itself.`, wanted);
  }
  const files = entries.filter((e) => e.type === 'file').length;
  const { size } = await stat(tarPath);
  return { digest: contextDigest(entries, dockerfile, buildArgs), files, bytes: size };
}

/**
 * Checks how the entries fit together: each path once, and nothing under a symlink or a file. A symlink's
 * target is not checked: it travels as a link, whatever it points to (a virtualenv's `bin/python ->
 * /usr/bin/python3`), as `docker build` sends it. That is safe because nothing follows it on the way: the
 * agent stores contents by hash and serves or writes entries by their own paths, and an entry under a link
 * is refused here, so neither the agent nor the engine's unpacking can write through one. Inside the image
 * the link resolves against the image's root, as in any image. The client runs this on its own listing too.
 */
export function checkEntries(entries: readonly ContextEntry[]): void {
  const byPath = new Map<string, ContextEntry>();
  for (const e of entries) {
    if (byPath.has(e.path)) throw new BadContextError(`The context archive holds ${q(e.path)} twice: send each path once.`, e.path);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    for (let i = e.path.indexOf('/'); i !== -1; i = e.path.indexOf('/', i + 1)) {
      const parent = byPath.get(e.path.slice(0, i));
      if (parent && parent.type !== 'dir') {
        throw new BadContextError(`${q(e.path)} in the context archive lies under ${q(parent.path)}, which is a ${parent.type}: the engine would write through it.`, e.path);
      }
    }
  }
}

/** Streams the archive through node-tar's parser, hashing file contents; nothing touches the disk. */
async function readEntries(tarPath: string): Promise<ContextEntry[]> {
  const entries: ContextEntry[] = [];
  const files = new Map<string, FileEntry>();
  // Loaded here: the CLI imports this file for its path checks, and node-tar's load is 6 ms of its start.
  const { Parser } = await import('tar');

  await new Promise<void>((resolve, reject) => {
    const source = createReadStream(tarPath);
    let failed = false;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      source.destroy();
      reject(err);
    };

    const onEntry = (entry: ReadEntry): void => {
      if (failed) {
        entry.resume();
        return;
      }
      try {
        const e = describeEntry(entry, files);
        if (e === undefined) {
          entry.resume();
        } else if (e.type === 'file' && e.sha256 === '') {
          hashInto(entry, e, () => {
            files.set(e.path, e);
            entries.push(e);
          });
        } else {
          entries.push(e);
          entry.resume();
        }
      } catch (err) {
        entry.resume();
        fail(err as Error);
      }
    };

    // strict: a damaged header or a truncated archive is an error, not a warning to skip past.
    const parser = new Parser({ strict: true, zstd: false, onReadEntry: onEntry });
    parser.on('ignoredEntry', (entry: ReadEntry) => {
      fail(new BadContextError(`${q(entry.path)} in the context archive has type ${entry.type}, which a build context cannot hold: send only files, directories and links.`, entry.path));
    });
    parser.on('error', (err: Error) => {
      fail(new BadContextError(`The context archive is not a readable tar file (${err.message}): send it again, uncompressed.`));
    });
    parser.on('end', () => {
      if (!failed) resolve();
    });
    source.on('error', (err) => fail(err));
    source.pipe(parser);
  });
  return entries;
}

/**
 * Turns one tar entry into a context entry, or refuses it. Returns a file entry with an empty hash when its
 * content is still to be read, and undefined for the archive's root directory (`./`), which COPY never uses.
 */
function describeEntry(entry: ReadEntry, files: ReadonlyMap<string, FileEntry>): ContextEntry | undefined {
  const raw = entry.path;
  const bad = (what: string): BadContextError => new BadContextError(`${q(raw)} in the context archive ${what}`, raw);
  if (raw.includes('\0')) throw bad('contains a NUL byte: the archive is damaged; send it again.');
  if (raw.startsWith('/')) throw bad('has an absolute path: entries must be relative to the context folder.');
  const p = canonicalPath(raw);
  if (p === undefined) throw bad('leads out of the context folder (..): entries must stay inside it.');
  const mode = entry.mode ?? 0;

  switch (entry.type) {
    case 'Directory':
      return p === '' ? undefined : { type: 'dir', path: p, mode, size: 0 };
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      if (p === '') throw bad('is a file without a name: the archive is damaged; send it again.');
      return { type: 'file', path: p, mode, size: entry.size, sha256: '' };
    case 'SymbolicLink': {
      const target = entry.linkpath ?? '';
      if (p === '') throw bad('is a symlink without a name: the archive is damaged; send it again.');
      if (target === '' || target.includes('\0')) throw bad('is a symlink with an empty or damaged target: send the archive again.');
      return { type: 'symlink', path: p, mode, size: 0, linkTarget: target };
    }
    case 'Link': {
      // A hard link is another name for a file sent earlier in the archive; it carries that file's content.
      const target = entry.linkpath ?? '';
      const t = target.startsWith('/') || target.includes('\0') ? undefined : canonicalPath(target);
      if (t === undefined || t === '') {
        throw bad(`is a hard link that points out of the build context (to ${q(target)}): send the file itself.`);
      }
      const file = files.get(t);
      if (!file) throw bad(`is a hard link to ${q(target)}, which is not a file earlier in the archive: send the file itself.`);
      if (p === '') throw bad('is a hard link without a name: the archive is damaged; send it again.');
      return { type: 'file', path: p, mode, size: file.size, sha256: file.sha256 };
    }
    case 'CharacterDevice':
    case 'BlockDevice':
    case 'FIFO':
      throw bad(`is a ${entry.type === 'FIFO' ? 'FIFO' : 'device'}, which a build context cannot hold: remove it or add it to .dockerignore.`);
    default:
      throw bad(`has type ${entry.type}, which a build context cannot hold: send only files, directories and links.`);
  }
}

function hashInto(entry: ReadEntry, e: FileEntry, done: () => void): void {
  const hash = createHash('sha256');
  // 'end' is registered before 'data' so it is in place even when an empty entry ends at once.
  entry.on('end', () => {
    e.sha256 = hash.digest('hex');
    done();
  });
  entry.on('data', (chunk: Buffer) => hash.update(chunk));
}
