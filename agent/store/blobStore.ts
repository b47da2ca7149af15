/**
 * The agent's content-addressed store of build-context files: a file's content is kept under its SHA-256, so
 * a later run of the same tenant uploads only the files it changed (see `context.manifest` in the protocol).
 *
 * Keyed per tenant: each tenant has its own folder and its own answer to "do you hold this?", so a tenant can
 * never learn from what the agent asks for that another tenant has uploaded some content. The same content
 * uploaded by two tenants is kept twice; that is the price of telling nothing.
 *
 * Bounded: past `maxBytes` the least recently used contents go, except those a run still needs (pinned from
 * its manifest until its build has read them). Recency lives in memory; after a restart the files' write
 * times stand in for it.
 *
 * Every content is verified on the way in: its bytes are hashed as they arrive and the file only takes its
 * name once the hash and size match, so a stored content is always what its name says.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** 2 GiB: a few large contexts of several tenants, small beside the images built from them. */
export const DEFAULT_STORE_BYTES = 2 * 1024 * 1024 * 1024;

/** The SHA-256 of no bytes: an empty file needs no upload and no stored file. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const SHA256 = /^[a-f0-9]{64}$/;

/** Content that arrived with other bytes than its name says; the message names the path and is shown as is. */
export class BlobMismatchError extends Error {
  override name = 'BlobMismatchError';
}

export class BlobStore {
  /** `tenantKey/sha256` to size, least recently used first (a Map keeps insertion order). */
  private readonly sizes = new Map<string, number>();
  private readonly pins = new Map<string, number>();
  /** Tenant folders known to exist. */
  private readonly dirs = new Set<string>();
  private total = 0;

  private constructor(private readonly dir: string, readonly maxBytes: number) {}

  /** Opens (creating) the store in `dir`, reading back what an earlier agent left there. */
  static async open(dir: string, maxBytes = DEFAULT_STORE_BYTES): Promise<BlobStore> {
    const store = new BlobStore(dir, maxBytes);
    // Half-written contents of an agent that stopped mid-upload are worth nothing.
    await rm(path.join(dir, 'tmp'), { recursive: true, force: true });
    await mkdir(path.join(dir, 'tmp'), { recursive: true });
    const found: { key: string; size: number; mtime: number }[] = [];
    for (const tenant of await readdir(dir)) {
      if (tenant === 'tmp') continue;
      const names = await readdir(path.join(dir, tenant)).catch(() => [] as string[]);
      for (const name of names) {
        if (!SHA256.test(name)) continue;
        const st = await stat(path.join(dir, tenant, name)).catch(() => undefined);
        if (st?.isFile()) found.push({ key: `${tenant}/${name}`, size: st.size, mtime: st.mtimeMs });
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) store.add(f.key, f.size);
    await store.evict();
    return store;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.total;
  }

  /** Whether `tenant` holds this content. */
  has(tenant: string, sha256: string): boolean {
    return sha256 === EMPTY_SHA256 || this.sizes.has(this.key(tenant, sha256));
  }

  /** Where the content lives (only meaningful while `has` says so, and pinned while read). */
  path(tenant: string, sha256: string): string {
    return path.join(this.dir, tenantKey(tenant), sha256);
  }

  /**
   * Keeps these contents from eviction until the returned function is called (once is enough, more is
   * harmless), and marks them as just used. Contents not held yet are pinned ahead of their arrival.
   */
  pin(tenant: string, sha256s: Iterable<string>): () => void {
    const keys = [...new Set(sha256s)].map((s) => this.key(tenant, s));
    for (const k of keys) {
      this.pins.set(k, (this.pins.get(k) ?? 0) + 1);
      const size = this.sizes.get(k);
      if (size !== undefined) {
        this.sizes.delete(k);
        this.sizes.set(k, size);
      }
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of keys) {
        const n = (this.pins.get(k) ?? 1) - 1;
        if (n > 0) this.pins.set(k, n);
        else this.pins.delete(k);
      }
      void this.evict();
    };
  }

  /**
   * Starts receiving one content of `size` bytes that should hash to `sha256`; `label` names it in errors
   * (the path of a file that has it).
   */
  async receive(tenant: string, sha256: string, size: number, label: string): Promise<BlobWriter> {
    const dir = this.tenantDir(tenant);
    const tmp = path.join(this.dir, 'tmp', `${randomBytes(8).toString('hex')}-${sha256.slice(0, 16)}`);
    const fh = await open(tmp, 'w', 0o600);
    return new BlobWriter(fh, tmp, sha256, size, label, async () => {
      const key = this.key(tenant, sha256);
      if (this.sizes.has(key)) {
        await unlink(tmp); // another upload of the same tenant stored it meanwhile
        return;
      }
      await rename(tmp, path.join(dir, sha256));
      this.add(key, size);
      await this.evict();
    });
  }

  /**
   * Stores a small content that arrived whole: verified, written and named at once. Synchronous on purpose:
   * for a file of a few KiB, the thread-pool round trips of open, write, close and rename cost more than the
   * write itself, and a context of thousands of small files pays them thousands of times.
   */
  putWhole(tenant: string, sha256: string, data: Buffer, label: string): void {
    const got = createHash('sha256').update(data).digest('hex');
    if (got !== sha256) throw new BlobMismatchError(mismatch(label, sha256, data.length, got, data.length));
    const key = this.key(tenant, sha256);
    if (this.sizes.has(key)) return;
    const dir = this.tenantDir(tenant);
    const tmp = path.join(this.dir, 'tmp', `${randomBytes(8).toString('hex')}-${sha256.slice(0, 16)}`);
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, path.join(dir, sha256));
    this.add(key, data.length);
    void this.evict();
  }

  private tenantDir(tenant: string): string {
    const dir = path.join(this.dir, tenantKey(tenant));
    if (!this.dirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      this.dirs.add(dir);
    }
    return dir;
  }

  private add(key: string, size: number): void {
    this.sizes.set(key, size);
    this.total += size;
  }

  /** Removes least recently used, unpinned contents until the store fits its bound. */
  private async evict(): Promise<void> {
    if (this.total <= this.maxBytes) return;
    const gone: string[] = [];
    for (const [key, size] of this.sizes) {
      if (this.total <= this.maxBytes) break;
      if (this.pins.has(key)) continue;
      this.sizes.delete(key);
      this.total -= size;
      gone.push(key);
    }
    // A file that cannot be removed is no longer counted either way; the next open of the store sees it again.
    await Promise.all(gone.map((k) => rm(path.join(this.dir, k), { force: true }).catch(() => {})));
  }

  private key(tenant: string, sha256: string): string {
    return `${tenantKey(tenant)}/${sha256}`;
  }
}

/** One content on its way in: hashed as written, named only once it proved to be what was announced. */
export class BlobWriter {
  private readonly hash = createHash('sha256');
  private written = 0;
  private closed = false;

  constructor(
    private readonly fh: FileHandle, private readonly tmp: string, readonly sha256: string, readonly size: number,
    private readonly label: string, private readonly commit: () => Promise<void>,
  ) {}

  /** Bytes still expected. */
  get remaining(): number {
    return this.size - this.written;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length > this.remaining) throw new Error('more bytes than the content\'s size');
    this.hash.update(chunk);
    this.written += chunk.length;
    let off = 0;
    while (off < chunk.length) off += (await this.fh.write(chunk, off, chunk.length - off)).bytesWritten;
  }

  /** Verifies and stores the content; throws `BlobMismatchError` (and keeps nothing) when it is not what was announced. */
  async finish(): Promise<void> {
    await this.close();
    const got = this.hash.digest('hex');
    if (this.written !== this.size || got !== this.sha256) {
      await rm(this.tmp, { force: true });
      throw new BlobMismatchError(mismatch(this.label, this.sha256, this.size, got, this.written));
    }
    await this.commit();
  }

  /** Drops what was written. */
  async abort(): Promise<void> {
    await this.close().catch(() => {});
    await rm(this.tmp, { force: true });
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

function mismatch(label: string, sha256: string, size: number, got: string, received: number): string {
  return `the content received for ${JSON.stringify(label)} does not match its sha256 in the manifest ` +
    `(announced ${sha256.slice(0, 12)}…, ${size} bytes; received ${got.slice(0, 12)}…, ${received} bytes): ` +
    'the file changed while it was being sent, or the upload was damaged; run again';
}

/** A tenant's folder name: fixed length and safe whatever characters the tenant's name holds. */
function tenantKey(tenant: string): string {
  return createHash('sha256').update(`bytenite-blob-tenant\n${tenant}`).digest('hex').slice(0, 32);
}
