/**
 * Writing an output archive to disk as it arrives from the engine: its regular files counted and its
 * SHA-256 taken on the way, room asked for before every write (the store's budget can refuse), and the
 * chunks that pile up during a write sent in one writev.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';

/** The outputs of a run could not be kept; `message` names the limit and the flag that raises it. */
export class OutputsNotKept extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputsNotKept';
  }
}

export interface WriteHooks {
  /** Called before `more` bytes are written after `sofar`; throws to refuse them (the write then fails with it). */
  room(sofar: number, more: number): void;
  /** Called once `n` more bytes are on disk (a reader may follow the file up to there). */
  grew(n: number): void;
}

export async function writeArchive(archive: NodeJS.ReadableStream, file: string, hooks: WriteHooks): Promise<{ files: number; bytes: number; sha256: string }> {
  await mkdir(path.dirname(file), { recursive: true });
  const hash = createHash('sha256');
  let files = 0;
  let bytes = 0;
  // Counting by reading the headers as the bytes pass: the archive is read from disk by no one but clients.
  const parser = new tar.Parser({
    onReadEntry: (e) => {
      if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') {
        files++;
        bytes += e.size ?? 0;
      }
      e.resume();
    },
  });
  let total = 0;
  const fh = await open(file, 'w', 0o600);
  // Chunks that arrive while a write is in flight are written together in one writev: waiting for each
  // small chunk of the engine's response on its own made the copy three times slower than `docker cp`.
  const meter = new Writable({
    highWaterMark: 4 * 1024 * 1024,
    writev: (items, cb) => {
      const chunks = items.map((i) => i.chunk as Buffer);
      const n = chunks.reduce((sum, c) => sum + c.length, 0);
      try {
        hooks.room(total, n);
      } catch (err) {
        return cb(err as Error);
      }
      total += n;
      for (const c of chunks) {
        hash.update(c);
        parser.write(c);
      }
      writeAll(fh, chunks).then(() => {
        hooks.grew(n);
        cb();
      }, (err) => cb(diskError(err)));
    },
    final: (cb) => {
      parser.end();
      cb();
    },
  });
  try {
    await pipeline(archive, meter);
  } finally {
    await fh.close();
  }
  return { files, bytes, sha256: hash.digest('hex') };
}

/** Writes every byte of `chunks` at the file's position (writev may write fewer than asked). */
async function writeAll(fh: FileHandle, chunks: Buffer[]): Promise<void> {
  let left = chunks;
  while (left.length > 0) {
    const { bytesWritten } = await fh.writev(left);
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const c of left) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      rest.push(skip > 0 ? c.subarray(skip) : c);
      skip = 0;
    }
    left = rest;
  }
}

/** A write that failed for lack of disk says so in the terms the agent's owner can act on. */
function diskError(err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new OutputsNotKept('outputs not kept: the agent\'s disk is full (free space on its data folder, or lower `bytenite agent --outputs-budget SIZE`)');
  return err;
}
