/**
 * The agent's side of a manifest upload: the build context tar, written from the content store as the engine
 * reads it (nothing is written to disk first). The archive holds exactly the manifest's entries in its
 * order, with the modes it lists, no owners (COPY sets them), as the client's own tar would have.
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Header, Pax, type HeaderData } from 'tar';
import type { ManifestEntry } from '../protocol';

const BLOCK = 512;
const READ_CHUNK = 1024 * 1024;

/**
 * A readable tar of `entries`, file contents read from `contentPath(sha256)` (which must stay there until the
 * end). `arrival(sha256)`, when it gives a promise, is awaited before that content is read: one still on its
 * way; a rejection ends the stream with that error.
 */
export function assembleContext(
  entries: readonly ManifestEntry[], contentPath: (sha256: string) => string, arrival: (sha256: string) => Promise<void> | undefined = () => undefined,
): Readable {
  return Readable.from(tarChunks(entries, contentPath, arrival), { objectMode: false, highWaterMark: 4 * READ_CHUNK });
}

async function* tarChunks(
  entries: readonly ManifestEntry[], contentPath: (sha256: string) => string, arrival: (sha256: string) => Promise<void> | undefined,
): AsyncGenerator<Buffer> {
  // Small entries are gathered into one chunk: thousands of 512-byte pushes would cost more than the bytes.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const add = (b: Buffer): Buffer | undefined => {
    pending.push(b);
    pendingBytes += b.length;
    return pendingBytes >= READ_CHUNK ? take() : undefined;
  };
  const take = (): Buffer => {
    const out = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return out;
  };

  for (const e of entries) {
    for (const h of headerBlocks(e)) {
      const full = add(h);
      if (full) yield full;
    }
    if (e.type !== 'file' || e.size === 0) continue;
    const coming = arrival(e.sha256);
    if (coming) {
      // What is gathered goes first: the engine can unpack it while this content arrives.
      if (pendingBytes > 0) yield take();
      await coming;
    }
    const fh = await open(contentPath(e.sha256), 'r');
    try {
      let left = e.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) throw new Error(`stored content ${e.sha256} of ${JSON.stringify(e.path)} is shorter than its ${e.size} bytes`);
        left -= bytesRead;
        const full = add(buf.subarray(0, bytesRead));
        if (full) yield full;
      }
    } finally {
      await fh.close();
    }
    const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
    if (pad) {
      const full = add(Buffer.alloc(pad));
      if (full) yield full;
    }
  }
  add(Buffer.alloc(2 * BLOCK)); // end of archive
  yield take();
}

/** The header of one entry, preceded by a PAX header when a field does not fit the classic one (a long path). */
function headerBlocks(e: ManifestEntry): Buffer[] {
  const data: HeaderData = {
    path: e.type === 'dir' ? `${e.path}/` : e.path,
    mode: e.mode,
    uid: 0,
    gid: 0,
    size: e.type === 'file' ? e.size : 0,
    mtime: new Date((e.mtime ?? 0) * 1000),
    type: e.type === 'file' ? 'File' : e.type === 'dir' ? 'Directory' : 'SymbolicLink',
    linkpath: e.type === 'symlink' ? e.linkTarget : undefined,
  };
  const header = new Header(data);
  const needPax = header.encode();
  const block = header.block as Buffer;
  return needPax ? [new Pax(data).encode(), block] : [block];
}
