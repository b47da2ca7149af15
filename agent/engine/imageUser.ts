/**
 * Who a container runs as, in numbers: the run's `user` or the image's `USER` (`1000`, `app`, `app:staff`,
 * `1000:1000`), resolved against the image's own /etc/passwd and /etc/group when it names rather than
 * numbers. The agent makes the output folder belong to that user, so an image that drops root (as
 * security guides say it should) can still write its results.
 */
import type Docker from 'dockerode';
import * as tar from 'tar';

export interface Owner {
  uid: number;
  gid: number;
}

const NUMERIC = /^\d+$/;

/** `name[:group]` split; empty or absent means root, as for the engine. */
export function splitUser(user: string | undefined): { user: string; group?: string } {
  const text = (user ?? '').trim();
  if (!text) return { user: '0' };
  const colon = text.indexOf(':');
  return colon < 0 ? { user: text } : { user: text.slice(0, colon) || '0', group: text.slice(colon + 1) || undefined };
}

/** The entry of `nameOrId` in a passwd-format file (name:x:uid:gid:...): [id, primary group id]. */
export function lookupPasswd(passwd: string, nameOrId: string): [number, number] | undefined {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || !NUMERIC.test(f[2]) || !NUMERIC.test(f[3])) continue;
    if (f[0] === nameOrId || f[2] === nameOrId) return [Number(f[2]), Number(f[3])];
  }
  return undefined;
}

/** The id of group `name` in a group-format file (name:x:gid:members). */
export function lookupGroup(group: string, name: string): number | undefined {
  for (const line of group.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] === name && NUMERIC.test(f[2])) return Number(f[2]);
  }
  return undefined;
}

/**
 * Resolves `user` for a created (not started) container of the image. Numbers need no lookup; a name is
 * read from the container's files. Undefined when a name is not found: the engine then refuses the start
 * with its own message, which says more than we could.
 */
export async function resolveOwner(container: Docker.Container, user: string | undefined): Promise<Owner | undefined> {
  const { user: u, group: g } = splitUser(user);
  let uid: number | undefined;
  let gid: number | undefined;
  if (NUMERIC.test(u)) uid = Number(u);
  if (g !== undefined && NUMERIC.test(g)) gid = Number(g);
  if (uid === undefined || (gid === undefined && g === undefined && uid !== 0)) {
    const passwd = await readFileOf(container, '/etc/passwd');
    const found = passwd !== undefined ? lookupPasswd(passwd, u) : undefined;
    if (uid === undefined) {
      if (!found) return undefined;
      uid = found[0];
    }
    if (gid === undefined && g === undefined) gid = found?.[1] ?? 0;
  }
  if (gid === undefined && g !== undefined) {
    const groups = await readFileOf(container, '/etc/group');
    gid = groups !== undefined ? lookupGroup(groups, g) : undefined;
    if (gid === undefined) return undefined;
  }
  return { uid, gid: gid ?? 0 };
}

/** A small text file of the container's filesystem, or undefined if it has none. */
async function readFileOf(container: Docker.Container, file: string): Promise<string | undefined> {
  let archive: NodeJS.ReadableStream;
  try {
    archive = await container.getArchive({ path: file });
  } catch {
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const parser = new tar.Parser({
      onReadEntry: (e) => {
        e.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 1024 * 1024) chunks.push(c); // a passwd file is small; a huge one is not read whole
        });
      },
    });
    parser.on('end', () => resolve());
    parser.on('error', reject);
    archive.on('error', reject);
    archive.pipe(parser as unknown as NodeJS.WritableStream);
  });
  return Buffer.concat(chunks).toString('utf8');
}
