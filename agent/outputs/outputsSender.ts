/**
 * Serving `outputs.get`: a run's output archive from the store, from any byte (a cut download resumes), and
 * followed while the agent is still copying it out of the container, so a client writes files while the
 * engine still reads them. Read from disk one chunk at a time, each sent before the next is read: memory
 * stays at a chunk whatever the size.
 */
import { once } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import type { AgentMessage } from '../protocol';
import { CHUNK_SIZE } from '../protocol';
import type { Run } from '../runs/run';
import { OutputStore, SavingArchive, type OutputRecord } from './outputStore';

export class OutputsRequestError extends Error {
  constructor(readonly code: 'not_found' | 'bad_message', message: string) {
    super(message);
  }
}

export interface OutputsRequest {
  id: string;
  run: Run;
  offset: number;
  wait: boolean;
  /** Aborted when the connection closes. */
  signal: AbortSignal;
  send(msg: AgentMessage): void;
  sendBinary(chunk: Buffer): Promise<void>;
}

/** Resolves when the run has ended (its final event is out), or when `signal` aborts. */
function ended(run: Run, signal: AbortSignal): Promise<void> {
  if (run.done) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const off = run.follow(run.lastSeq, () => {
      if (run.done) finish();
    });
    const finish = () => {
      off();
      signal.removeEventListener('abort', finish);
      resolve();
    };
    signal.addEventListener('abort', finish, { once: true });
  });
}

/** Streams the archive; throws OutputsRequestError (before anything was sent) when there is none to send. */
export async function sendOutputs(store: OutputStore, req: OutputsRequest): Promise<void> {
  const { run, id } = req;
  if (!run.done) {
    if (!req.wait) throw new OutputsRequestError('bad_message', `run ${run.id} has not finished yet; outputs come after it ends (or ask with \`wait\`)`);
    await Promise.race([store.whenStarted(run.id, req.signal), ended(run, req.signal)]);
    if (req.signal.aborted) return;
  }
  const saving = store.inProgress(run.id);
  const record = store.get(run.id);
  let fh: FileHandle | undefined;
  if (saving) fh = await open(saving.partPath, 'r').catch(() => undefined);
  // Not being written (or it just finished, and the part file was renamed): the record says.
  const source = fh && saving ? { saving } : { record: store.get(run.id) ?? record };
  if (!fh) {
    const r = source.record;
    if (!r) {
      if (!run.done) return sendOutputs(store, req); // the save ended between the two looks: ask again
      const why = run.final?.outputs.notKept;
      if (why) throw new OutputsRequestError('not_found', why);
      req.send({ type: 'outputs', inReplyTo: id, runId: run.id, offset: 0, bytes: 0 });
      req.send({ type: 'outputs.end', inReplyTo: id, runId: run.id, bytes: 0, files: 0, fileBytes: 0 });
      return;
    }
    if (r.removedAt) throw new OutputsRequestError('not_found', `the outputs of ${run.id} were removed from the agent on ${r.removedAt.slice(0, 16).replace('T', ' ')} UTC: ${r.removedWhy}`);
    fh = await open(store.tarOf(run.id), 'r').catch(() => undefined);
    if (!fh) throw new OutputsRequestError('not_found', `the outputs of ${run.id} are no longer on this agent`);
  }
  try {
    const known = source.record;
    if (known && req.offset > known.tarBytes) throw new OutputsRequestError('bad_message', `offset ${req.offset} is past the end of the archive (${known.tarBytes} bytes)`);
    req.send({ type: 'outputs', inReplyTo: id, runId: run.id, offset: req.offset, ...(known ? { bytes: known.tarBytes } : {}) });
    const done = await stream(fh, req, source);
    if (done.empty) {
      // Only the folder itself came out: a client discards what it received, as for a run with no file.
      req.send({ type: 'outputs.end', inReplyTo: id, runId: run.id, bytes: 0, files: 0, fileBytes: 0 });
      return;
    }
    if (done.error) {
      req.send({ type: 'outputs.end', inReplyTo: id, runId: run.id, bytes: 0, files: 0, fileBytes: 0, error: done.error });
      return;
    }
    const r = done.record!;
    req.send({ type: 'outputs.end', inReplyTo: id, runId: run.id, bytes: r.tarBytes, ...(r.sha256 ? { sha256: r.sha256 } : {}), files: r.files, fileBytes: r.bytes });
  } finally {
    await fh.close();
  }
}

async function stream(
  fh: FileHandle, req: OutputsRequest, src: { saving?: SavingArchive; record?: OutputRecord },
): Promise<{ record?: OutputRecord; error?: string; empty?: boolean }> {
  const wake = () => src.saving?.emit('progress');
  req.signal.addEventListener('abort', wake, { once: true });
  try {
    return await follow(fh, req, src);
  } finally {
    req.signal.removeEventListener('abort', wake);
  }
}

async function follow(
  fh: FileHandle, req: OutputsRequest, src: { saving?: SavingArchive; record?: OutputRecord },
): Promise<{ record?: OutputRecord; error?: string; empty?: boolean }> {
  let pos = req.offset;
  const buf = Buffer.allocUnsafe(CHUNK_SIZE);
  for (;;) {
    if (req.signal.aborted) return { error: 'the connection closed' };
    const s = src.saving;
    const end = s ? s.written : src.record!.tarBytes;
    if (pos < end) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK_SIZE, end - pos), pos);
      if (bytesRead === 0) return { error: 'the archive ended before its recorded size' };
      pos += bytesRead;
      // A copy: the frame may still be queued in the socket when the buffer is read into again.
      await req.sendBinary(Buffer.from(buf.subarray(0, bytesRead)));
      continue;
    }
    if (!s) return { record: src.record };
    if (s.outcome) {
      if (s.outcome.error) return { error: s.outcome.error.message };
      if (!s.outcome.record) return { empty: true };
      if (pos >= s.outcome.record.tarBytes) return { record: s.outcome.record };
      continue; // the last bytes landed with the outcome
    }
    await once(s, 'progress');
  }
}
