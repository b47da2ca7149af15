/**
 * The client's side of a cold start's context upload: a tar file for an agent without a content store, or the
 * manifest of the listed context and then the contents the agent says it lacks, packed into binary frames.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { AgentMessage, ClientMessageInput, LocalContext } from '../protocol';
import { CHUNK_SIZE } from '../protocol/version';
import type { FileEntry } from '../context/listContext';
import type { ListedContext } from '../context/packContext';
import { manifestParts, toManifest } from '../context/manifest';
import { AgentError } from './agentError';

/** What the upload needs of a connection: a request answered by its reply, and one binary frame sent (and written). */
export interface UploadChannel {
  request(m: Omit<Extract<ClientMessageInput, { type: 'context.manifest' }>, 'id'>): Promise<AgentMessage>;
  sendBinary(data: Buffer): Promise<void>;
}

export async function sendTar(ch: UploadChannel, tarPath: string): Promise<number> {
  let bytes = 0;
  for await (const chunk of createReadStream(tarPath, { highWaterMark: CHUNK_SIZE })) {
    bytes += (chunk as Buffer).length;
    // Wait for each frame to be written: memory stays at one chunk however large the context.
    await ch.sendBinary(chunk as Buffer);
  }
  return bytes;
}

/** Sends the manifest (all parts at once, in order), then the contents the agent asked for; returns their bytes. */
export async function sendManifest(ch: UploadChannel, runId: string, context: ListedContext, local?: LocalContext): Promise<{ bytes: number; local: boolean }> {
  const parts = manifestParts(toManifest(context.entries));
  const replies = await Promise.all(parts.map((entries, i) => ch.request({
    type: 'context.manifest', runId, entries, last: i === parts.length - 1, ...(i === 0 && local ? { local } : {}),
  })));
  const bySha = new Map<string, FileEntry>();
  for (const e of context.entries) if (e.type === 'file' && !bySha.has(e.sha256)) bySha.set(e.sha256, e);
  const wanted: FileEntry[] = [];
  for (const r of replies) {
    if (r.type !== 'context.missing') throw new AgentError('internal', `unexpected reply to context.manifest: ${r.type}`);
    for (const sha of r.sha256s) {
      const e = bySha.get(sha);
      if (!e) throw new AgentError('internal', `the agent asked for content ${sha}, which no file of the context has`);
      wanted.push(e);
    }
  }
  // Reading locally, the agent asks for nothing: no content is sent.
  const readLocally = replies[0]?.type === 'context.missing' && replies[0].local === true;
  return { bytes: await sendContents(ch, context.root, wanted), local: readLocally };
}

/**
 * The asked contents back to back, packed into frames of CHUNK_SIZE (many small files share one frame); the
 * next frame is read while the last one is being sent.
 */
async function sendContents(ch: UploadChannel, root: string, files: readonly FileEntry[]): Promise<number> {
  let frame = Buffer.allocUnsafe(CHUNK_SIZE);
  let used = 0;
  let sent = 0;
  let inFlight: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    await inFlight;
    inFlight = ch.sendBinary(frame.subarray(0, used));
    inFlight.catch(() => {}); // awaited before the next frame and at the end
    sent += used;
    frame = Buffer.allocUnsafe(CHUNK_SIZE);
    used = 0;
  };
  try {
    for (const e of files) {
      const fh = await openForSend(path.join(root, e.path), e.size);
      try {
        let left = e.size;
        while (left > 0) {
          if (used === frame.length) await flush();
          const bytesRead = await fh.read(frame, used, Math.min(frame.length - used, left));
          if (bytesRead === 0) throw new Error(`${JSON.stringify(e.path)} changed while the build context was being sent: run again once your files are written.`);
          used += bytesRead;
          left -= bytesRead;
        }
      } finally {
        await fh.close();
      }
    }
    if (used > 0) await flush();
  } finally {
    await inFlight;
  }
  return sent;
}

/** Files up to this size are read with synchronous calls: the thread-pool round trips would cost more. */
const SYNC_READ_MAX = 256 * 1024;

interface SendFile {
  read(buf: Buffer, offset: number, length: number): number | Promise<number>;
  close(): void | Promise<void>;
}

/** Opens a context file for sending; a small one is read synchronously (thousands of them make a context). */
async function openForSend(file: string, size: number): Promise<SendFile> {
  if (size <= SYNC_READ_MAX) {
    const fd = openSync(file, 'r');
    return { read: (buf, offset, length) => readSync(fd, buf, offset, length, null), close: () => closeSync(fd) };
  }
  const fh = await open(file, 'r');
  return { read: async (buf, offset, length) => (await fh.read(buf, offset, length, null)).bytesRead, close: () => fh.close() };
}
