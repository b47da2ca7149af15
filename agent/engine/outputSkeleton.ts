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

export function outputSkeleton(outputDir: string, owner: Owner | undefined, shim?: Buffer): Buffer {
  const rel = path.posix.normalize(outputDir).replace(/^\/+|\/+$/g, '');
  const blocks: Buffer[] = [];
  const entry = (p: string, type: 'Directory' | 'File', mode: number, own: Owner, data?: Buffer) => {
    const h = new tar.Header({ path: p, type, mode, uid: own.uid, gid: own.gid, size: data?.length ?? 0, mtime: new Date(0) });
    h.encode();
    blocks.push(h.block!);
    if (data) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  };
  // Parents the image lacks are made by the engine (root, 0755); only the folder itself is set here.
  entry(`${rel}/`, 'Directory', owner ? 0o755 : 0o777, owner ?? ROOT);
  if (shim) {
    entry(`${SHIM_DIR}/`, 'Directory', 0o755, ROOT);
    entry(`${SHIM_DIR}/busybox`, 'File', 0o755, ROOT, shim);
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
