/**
 * One context upload by manifest, on the agent: takes the manifest part by part and says which contents the
 * tenant's store lacks, then takes those contents (back to back, in the order asked, cut into frames any way
 * the client likes) and stores each once its SHA-256 is verified. Once the manifest is complete it gives the
 * context tar, assembled from the store as the contents arrive: the engine takes in the context while it is
 * still being uploaded. Every content the manifest names stays pinned in the store until `release()`.
 */
import type { Readable } from 'node:stream';
import type { ManifestEntry } from '../protocol';
import type { BlobStore, BlobWriter } from '../store/blobStore';
import { assembleContext, type ContentSource } from './assembleContext';
import type { StoredContext } from '../engine/engine';
import { BadContextError } from './checkContext';
import { checkManifest, MAX_MANIFEST_ENTRIES } from './manifest';
import { localSource } from './localSource';

interface Wanted {
  sha256: string;
  size: number;
  /** A path with this content, to name in errors. */
  path: string;
  /** Settles when the content is stored, or the upload failed. */
  arrived: Promise<void>;
  stored: boolean;
  resolve(): void;
  reject(err: Error): void;
}

/** Contents up to this size that arrive whole in one frame are stored at once (see BlobStore.putWhole). */
const WHOLE_MAX = 256 * 1024;

export class ManifestUpload {
  private readonly entries: ManifestEntry[] = [];
  private readonly wanted: Wanted[] = [];
  private readonly bySha = new Map<string, Wanted>();
  private failure?: Error;
  private readonly asked = new Set<string>();
  private readonly releases: (() => void)[] = [];
  private next = 0;
  private writer?: BlobWriter;
  /** Text bytes of the manifest parts received. */
  manifestBytes = 0;
  /** Content bytes asked for, and received so far. */
  askedBytes = 0;
  receivedBytes = 0;
  /** True once the last part came and the whole manifest checked out. */
  complete = false;

  /**
   * `localRoot`: the client's own folder, which the agent sees (checked by the caller): no content is asked
   * for, pinned or stored; the build reads each from the folder (see localSource.ts).
   */
  constructor(
    private readonly store: BlobStore, private readonly tenant: string,
    private readonly spec: { dockerfile: string; buildArgs: Record<string, string>; contextDigest: string },
    private readonly maxBytes: number,
    readonly localRoot?: string,
  ) {}

  /**
   * Takes one part; returns the contents of it to ask for. On the last part the whole manifest is checked
   * (throws `BadContextError`).
   */
  addPart(entries: readonly ManifestEntry[], last: boolean, textBytes: number): string[] {
    if (this.complete) throw new BadContextError('the manifest was already complete: send the asked contents, then upload.end');
    if (this.entries.length + entries.length > MAX_MANIFEST_ENTRIES) {
      throw new BadContextError(`the manifest lists more than ${MAX_MANIFEST_ENTRIES} entries: leave files out with .dockerignore.`);
    }
    this.manifestBytes += textBytes;
    const missing: string[] = [];
    for (const e of entries) {
      this.entries.push(e);
      if (this.localRoot || e.type !== 'file' || e.size === 0) continue;
      if (this.asked.has(e.sha256)) continue;
      this.asked.add(e.sha256);
      // Pinned before it is looked up, so it cannot be evicted between the answer and the build.
      this.releases.push(this.store.pin(this.tenant, [e.sha256]));
      if (this.store.has(this.tenant, e.sha256)) continue;
      missing.push(e.sha256);
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const arrived = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      arrived.catch(() => {}); // the tar stream may never wait for it (a run cancelled before its build)
      const w = { sha256: e.sha256, size: e.size, path: e.path, arrived, resolve, reject, stored: false };
      this.wanted.push(w);
      this.bySha.set(e.sha256, w);
      this.askedBytes += e.size;
    }
    if (last) {
      checkManifest(this.entries, this.spec, this.maxBytes);
      this.complete = true;
    }
    return missing;
  }

  /** Takes the next bytes of the asked contents; throws when they are more than asked or a content does not verify. */
  async write(chunk: Buffer): Promise<void> {
    if (!this.complete) throw new BadContextError('content bytes arrived before the last part of the manifest: send the whole manifest first');
    try {
      await this.take(chunk);
    } catch (err) {
      this.fail(err as Error);
      throw err;
    }
  }

  private async take(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (!this.writer) {
        const next = this.wanted[this.next];
        if (!next) throw new BadContextError(`more content bytes arrived than the ${this.askedBytes} asked for`);
        if (next.size <= WHOLE_MAX && chunk.length - off >= next.size) {
          const data = chunk.subarray(off, off + next.size);
          this.store.putWhole(this.tenant, next.sha256, data, next.path);
          off += next.size;
          this.receivedBytes += next.size;
          this.next++;
          next.stored = true;
          next.resolve();
          continue;
        }
        this.writer = await this.store.receive(this.tenant, next.sha256, next.size, next.path);
      }
      // Held locally: release() may drop this.writer while a write is awaited (its write then fails).
      const writer = this.writer;
      const n = Math.min(writer.remaining, chunk.length - off);
      await writer.write(chunk.subarray(off, off + n));
      off += n;
      this.receivedBytes += n;
      if (writer.remaining === 0) {
        if (this.writer === writer) this.writer = undefined;
        this.next++;
        await writer.finish();
        const w = this.bySha.get(writer.sha256);
        if (w) {
          w.stored = true;
          w.resolve();
        }
      }
    }
  }

  /** Checks that every asked content arrived. */
  finish(): void {
    if (!this.complete) throw new BadContextError('upload.end came before the last part of the manifest');
    if (this.next < this.wanted.length) {
      throw new BadContextError(`received ${this.receivedBytes} of the ${this.askedBytes} content bytes asked for: send every asked content, in the order asked`);
    }
  }

  /**
   * The context tar, read from the store; a content still to come is waited for, and the stream fails (with a
   * `BadContextError`, so the run fails as an upload) when the upload does. The contents stay pinned until
   * `release()`.
   */
  open(): Readable {
    return assembleContext(this.entries, this.files());
  }

  /** The context as the store holds it, for a builder that reads files one by one (BuildKit's FileSync). */
  stored(key: string): StoredContext {
    return { entries: this.entries, files: this.files(), key };
  }

  private files(): ContentSource {
    if (this.localRoot) return localSource(this.localRoot, this.entries);
    return {
      path: (sha) => this.store.path(this.tenant, sha),
      arrival: (sha) => {
        const w = this.bySha.get(sha);
        return w && !w.stored ? w.arrived : undefined;
      },
    };
  }

  /**
   * Unpins the contents (they may be evicted from now on), drops a content half received, and fails what
   * still waits for one, with `why`.
   */
  release(why = 'the upload ended before every content arrived'): void {
    this.fail(new BadContextError(why));
    for (const r of this.releases.splice(0)) r();
    const w = this.writer;
    this.writer = undefined;
    void w?.abort();
  }

  /** Every content not yet stored will not come: whoever waits for one hears why. */
  private fail(err: Error): void {
    this.failure ??= err instanceof BadContextError ? err : new BadContextError(err.message);
    for (const w of this.wanted) w.reject(this.failure);
  }
}
