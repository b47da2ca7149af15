/**
 * Fetching a run's outputs into a folder, for the CLI and the extension alike: files are written as the
 * archive's bytes arrive (nothing held in memory), into a hidden staging folder that is moved into place
 * only once the whole archive has arrived and its SHA-256 matches the agent's. A connection that drops is
 * opened again and the download goes on from the byte where it stopped; a download that cannot finish
 * leaves no file behind that looks complete.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { AgentClient, AgentError, OutputsEnd } from './agentClient';
import { formatBytes } from '../hardware/sizes';

export interface FetchOutputsOptions {
  runId: string;
  /** Where the files go (created if missing; files already there with the same names are replaced). */
  outDir: string;
  /** The connection to download on; called again after a drop, to connect anew. */
  connect(): Promise<AgentClient>;
  /** For a run still in progress: wait for its container to stop and take the archive as it is copied out. */
  wait?: boolean;
  /** How long to keep reconnecting after the download last made progress (default 60 s). */
  retryForMs?: number;
  onProgress?(receivedBytes: number, totalBytes: number | undefined): void;
  /** Called when a dropped download resumes, with the byte it resumes from. */
  onResume?(offset: number, reason: string): void;
}

export interface FetchedOutputs {
  files: number;
  bytes: number;
  /** The folder the files are in; undefined when the run left none. */
  dir?: string;
}

export class OutputsFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputsFetchError';
  }
}

export async function fetchOutputs(opts: FetchOutputsOptions): Promise<FetchedOutputs> {
  // Loaded at the first fetch, not with the CLI: `run` asks once the run is accepted, while it waits for the
  // run's first event anyway.
  const tar = await import('tar');
  const staging = path.join(opts.outDir, `.bytenite-partial-${opts.runId}`);
  const outExisted = await lstat(opts.outDir).then(() => true, () => false);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const hash = createHash('sha256');
  let received = 0;
  let total: number | undefined;
  // The archive's entries start with the output folder's own name: strip it. node-tar refuses absolute
  // paths and `..` on extraction, so a container cannot make the client write outside the folder.
  // Files belong to whoever fetches them, as with `docker cp`, not to the container's user ids.
  const unpack = tar.x({ cwd: staging, strip: 1, preserveOwner: false });
  const unpacked = new Promise<void>((resolve, reject) => {
    unpack.on('close', () => resolve());
    unpack.on('error', reject);
  });
  unpacked.catch(() => {});
  const sink = new Writable({
    highWaterMark: 4 * 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      received += chunk.length;
      opts.onProgress?.(received, total);
      if (unpack.write(chunk)) cb();
      else unpack.once('drain', () => cb());
    },
  });
  const cleanUp = async () => {
    unpack.abort?.(new Error('download abandoned'));
    await rm(staging, { recursive: true, force: true });
    if (!outExisted) await rmdir(opts.outDir).catch(() => {});
  };
  try {
    const end = await download(opts, sink, () => received, (t) => { total = t; });
    // Every byte handed to the sink is in the unpacker once the sink has drained.
    await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (end.bytes === 0 || end.files === 0) {
      unpack.end();
      await cleanUp();
      return { files: 0, bytes: 0 };
    }
    if (received !== end.bytes) throw new OutputsFetchError(`the outputs of ${opts.runId} arrived incomplete (${received} of ${end.bytes} bytes): fetch them again with \`bytenite outputs ${opts.runId}\``);
    if (end.sha256 && hash.digest('hex') !== end.sha256) {
      throw new OutputsFetchError(`the outputs of ${opts.runId} arrived damaged (their SHA-256 differs from the agent's): fetch them again with \`bytenite outputs ${opts.runId}\``);
    }
    unpack.end();
    await unpacked;
    await moveInto(staging, opts.outDir);
    await rmdir(staging);
    // Only now may the agent let them go: the files are on this disk, checked.
    const client = await opts.connect().catch(() => undefined);
    await client?.outputsFetched(opts.runId).catch(() => {});
    return { files: end.files, bytes: end.fileBytes, dir: opts.outDir };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

/** Downloads from where the sink stands, reconnecting after a drop as long as the download moves on. */
async function download(opts: FetchOutputsOptions, sink: Writable, received: () => number, setTotal: (n: number | undefined) => void): Promise<OutputsEnd> {
  const retryFor = opts.retryForMs ?? 60_000;
  let lastProgress = Date.now();
  let lastOffset = -1;
  let delay = 250;
  for (;;) {
    const offset = received();
    if (offset > lastOffset) {
      lastProgress = Date.now();
      delay = 250;
    }
    lastOffset = offset;
    let client: AgentClient | undefined;
    try {
      client = await opts.connect();
      return await client.downloadOutputs(opts.runId, sink, { offset, wait: opts.wait, onStart: (r) => setTotal(r.bytes) });
    } catch (err) {
      if (!(err instanceof AgentError) || err.code !== 'connection') throw err;
      const stoppedAt = received();
      if (stoppedAt > offset) lastProgress = Date.now();
      if (Date.now() - lastProgress > retryFor) {
        throw new OutputsFetchError(
          `the download of ${opts.runId}'s outputs stopped at ${formatBytes(stoppedAt)} (${err.message}) and could not resume for ${Math.round(retryFor / 1000)} s; ` +
            `they stay on the agent: fetch them with \`bytenite outputs ${opts.runId}\``,
        );
      }
      opts.onResume?.(stoppedAt, err.message);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/** Moves everything in `src` into `dst`, merging folders that exist on both sides and replacing the rest. */
async function moveInto(src: string, dst: string): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const name of await readdir(src)) {
    const from = path.join(src, name);
    const to = path.join(dst, name);
    const [a, b] = await Promise.all([lstat(from), lstat(to).catch(() => undefined)]);
    if (a.isDirectory() && b?.isDirectory()) {
      await moveInto(from, to);
      await rmdir(from);
      continue;
    }
    if (b) await rm(to, { recursive: true, force: true });
    await rename(from, to);
  }
}
