/**
 * One context upload by manifest, on the agent: takes the manifest part by part and says which contents the
 * tenant's store lacks, then takes those contents (back to back, in the order asked, cut into frames any way
 * the client likes) and stores each once its SHA-256 is verified. At the end it gives the context tar,
 * assembled from the store. Every content the manifest names stays pinned in the store until `release()`.
 */
import type { Readable } from 'node:stream';
import type { ManifestEntry } from '../protocol';
import type { BlobStore, BlobWriter } from '../store/blobStore';
import { assembleContext } from './assembleContext';
import { BadContextError } from './checkContext';
import { checkManifest, MAX_MANIFEST_ENTRIES } from './manifest';

interface Wanted {
  sha256: string;
  size: number;
  /** A path with this content, to name in errors. */
  path: string;
}

export class ManifestUpload {
  private readonly entries: ManifestEntry[] = [];
  private readonly wanted: Wanted[] = [];
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

  constructor(
    private readonly store: BlobStore, private readonly tenant: string,
    private readonly spec: { dockerfile: string; buildArgs: Record<string, string>; contextDigest: string },
    private readonly maxBytes: number,
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
    const shas: string[] = [];
    const missing: string[] = [];
    for (const e of entries) {
      this.entries.push(e);
      if (e.type !== 'file' || e.size === 0) continue;
      shas.push(e.sha256);
      if (this.asked.has(e.sha256)) continue;
      this.asked.add(e.sha256);
      // Pinned before it is looked up, so it cannot be evicted between the answer and the build.
      this.releases.push(this.store.pin(this.tenant, [e.sha256]));
      if (this.store.has(this.tenant, e.sha256)) continue;
      missing.push(e.sha256);
      this.wanted.push({ sha256: e.sha256, size: e.size, path: e.path });
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
    let off = 0;
    while (off < chunk.length) {
      if (!this.writer) {
        const w = this.wanted[this.next];
        if (!w) throw new BadContextError(`more content bytes arrived than the ${this.askedBytes} asked for`);
        this.writer = await this.store.receive(this.tenant, w.sha256, w.size, w.path);
      }
      const n = Math.min(this.writer.remaining, chunk.length - off);
      await this.writer.write(chunk.subarray(off, off + n));
      off += n;
      this.receivedBytes += n;
      if (this.writer.remaining === 0) {
        const done = this.writer;
        this.writer = undefined;
        this.next++;
        await done.finish();
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

  /** The context tar, read from the store; the contents stay pinned until `release()`. */
  open(): Readable {
    return assembleContext(this.entries, (sha) => this.store.path(this.tenant, sha));
  }

  /** Unpins the contents (they may be evicted from now on) and drops a content half received. */
  release(): void {
    for (const r of this.releases.splice(0)) r();
    const w = this.writer;
    this.writer = undefined;
    void w?.abort();
  }
}
