/**
 * The tar the agent puts into a container before it starts: the output folder, owned by the user the
 * container runs as (unknown or root: root, and writable by all, for programs that switch user), and for a
 * hot container the shim. Headers are written here rather than packed from a folder: owner and mode must be
 * exactly these, whoever runs the agent.
 */
import path from 'node:path';
import * as tar from 'tar';
import type { Owner } from './imageUser';
import { SHIM_DIR } from './hotShim';

const ROOT: Owner = { uid: 0, gid: 0 };

interface TarEntry {
  path: string;
  type: 'Directory' | 'File';
  mode: number;
  owner: Owner;
  data?: Buffer;
}

/** A tar of these entries, headers exactly as given. */
function tarOf(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = new tar.Header({ path: e.path, type: e.type, mode: e.mode, uid: e.owner.uid, gid: e.owner.gid, size: e.data?.length ?? 0, mtime: new Date(0) });
    h.encode();
    blocks.push(h.block!);
    if (e.data) blocks.push(e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function shimEntries(shim: Buffer): TarEntry[] {
  return [
    { path: `${SHIM_DIR}/`, type: 'Directory', mode: 0o755, owner: ROOT },
    { path: `${SHIM_DIR}/busybox`, type: 'File', mode: 0o755, owner: ROOT, data: shim },
  ];
}

export function outputSkeleton(outputDir: string, owner: Owner | undefined, shim?: Buffer): Buffer {
  const rel = path.posix.normalize(outputDir).replace(/^\/+|\/+$/g, '');
  // Parents the image lacks are made by the engine (root, 0755); only the folder itself is set here.
  const entries: TarEntry[] = [{ path: `${rel}/`, type: 'Directory', mode: owner ? 0o755 : 0o777, owner: owner ?? ROOT }];
  return tarOf(shim ? [...entries, ...shimEntries(shim)] : entries);
}

/** Only the shim, for a container made without it that needs it later (see containerDial.ts). */
export function shimArchive(shim: Buffer): Buffer {
  return tarOf(shimEntries(shim));
}
