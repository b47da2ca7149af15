/**
 * The agent's side of a manifest upload: the build context tar, written from the content store as the engine
 * reads it (nothing is written to disk first). The archive holds exactly the manifest's entries in its
 * order, with the modes it lists, no owners (COPY sets them), as the client's own tar would have.
 */
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Header, Pax, type HeaderData } from 'tar';
import type { ManifestEntry } from '../protocol';

const BLOCK = 512;
const READ_CHUNK = 1024 * 1024;
/** Contents up to this size are read in one synchronous call: cheaper than three thread-pool round trips. */
const SMALL = 256 * 1024;

export interface ContentSource {
  /** Where a content lives; it must stay there until the stream has read it. */
  path(sha256: string): string;
  /** A promise for a content still on its way (awaited before it is read; a rejection ends the stream). */
  arrival?(sha256: string): Promise<void> | undefined;
}

/** A readable tar of `entries`, their contents taken from `source`. */
export function assembleContext(entries: readonly ManifestEntry[], source: ContentSource): Readable {
  return Readable.from(tarChunks(entries, source), { objectMode: false, highWaterMark: 4 * READ_CHUNK });
}

async function* tarChunks(entries: readonly ManifestEntry[], source: ContentSource): AsyncGenerator<Buffer> {
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
    const coming = source.arrival?.(e.sha256);
    if (coming) {
      // What is gathered goes first: the engine can unpack it while this content arrives.
      if (pendingBytes > 0) yield take();
      await coming;
    }
    if (e.size <= SMALL) {
      const data = readFileSync(source.path(e.sha256));
      if (data.length !== e.size) throw new Error(`stored content ${e.sha256} of ${JSON.stringify(e.path)} is not ${e.size} bytes long`);
      const full = add(data);
      if (full) yield full;
    } else {
      yield* readContent(e, source.path(e.sha256), add);
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

/** A large content, read in chunks. */
async function* readContent(e: Extract<ManifestEntry, { type: 'file' }>, file: string, add: (b: Buffer) => Buffer | undefined): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
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
