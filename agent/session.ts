/**
 * One client connection: validates every frame against the protocol schema, answers requests, takes a
 * context upload (a manifest and the contents the agent lacks, or a whole tar, as binary frames), and
 * forwards the events of the runs the client follows. A bad frame
 * gets an error reply and the connection carries on; closing it detaches from runs without stopping them.
 */
import { createWriteStream, WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import type WebSocket from 'ws';
import {
  AgentMessage, AGENT_VERSION, Catalog, ClientMessage, ErrorCode, PROTOCOL_VERSION, SUPPORTED_PROTOCOLS,
  parseClientMessage, CHUNK_SIZE, isFinal, StorageUse, type LocalContext,
} from './protocol';
import type { Engine } from './engine/engine';
import { EngineUnavailableError } from './engine/engine';
import type { RunManager } from './runs/runManager';
import type { Run } from './runs/run';
import { RunFeed } from './runs/runFeed';
import type { Logger } from './log';
import { checkHardware } from './hardware/catalog';
import { checkContext } from './context/checkContext';
import { ManifestUpload } from './context/manifestUpload';
import { contextKey, localContextKey } from './build/contextKey';
import { seesLocalContext } from './context/localIdentity';
import { isLoopback } from './network/loopback';
import { DEFAULT_TENANT } from './auth/tokens';
import type { BlobStore } from './store/blobStore';
import type { OutputStore } from './outputs/outputStore';
import { OutputsRequestError, sendOutputs } from './outputs/outputsSender';
import { EndpointError, type Endpoints } from './endpoints/endpoints';
import { VolumeError, type Volumes } from './volumes/volumes';
import { admitRun, RunRefusedError } from './runs/admitRun';
import { ScheduleError, type Schedules } from './schedules/scheduler';

export class UploadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UploadError';
  }
}

export interface SessionDeps {
  runs: RunManager;
  engine: Engine;
  catalog: Catalog;
  log: Logger;
  maxContextBytes: number;
  capabilities: string[];
  /** The content store behind `context.manifest` uploads. */
  blobs: BlobStore;
  outputs: OutputStore;
  /** The agent's disk use, part by part, for the hardware reply. */
  storage(): Promise<StorageUse[]>;
  engineDescription(): Promise<string | undefined>;
  /** The endpoints the agent serves; absent on the CLI's embedded agent. */
  endpoints?: Endpoints;
  /** Why there are no endpoints here, when `endpoints` is absent. */
  noEndpoints?: string;
  /** Tenants' named volumes. */
  volumes?: Pick<Volumes, 'check' | 'list' | 'remove'>;
  /** The schedules the agent keeps and fires; absent on the CLI's embedded agent. */
  schedules?: Schedules;
  /** Why there are no schedules here, when `schedules` is absent. */
  noSchedules?: string;
}

class RequestError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

interface Upload {
  run: Run;
  /** Bytes received: the tar's, or the manifest's text and the contents. */
  bytes: number;
  lastReport: number;
  failed?: string;
  /** A whole tar (clients that send no manifest), written to disk as it comes. */
  tar?: { path: string; file: WriteStream };
  manifest?: ManifestUpload;
  /** The client's folder, when the agent reads the contents from it (the manifest's `local`, checked). */
  local?: LocalContext;
}

/** Bytes waiting to be sent to one client beyond which it is dropped as too slow (run events keep far below: RunFeed). */
const MAX_BUFFERED = 16 * 1024 * 1024;

/** How often upload progress is reported, at most. */
const UPLOAD_REPORT_MS = 200;

export class Session {
  private helloDone = false;
  private upload?: Upload;
  /** The outputs download in progress on this connection (binary frames carry no id: one at a time). */
  private download?: AbortController;
  private readonly following = new Map<string, () => void>();
  /** Endpoint journals this connection follows, by name. */
  private readonly followingRequests = new Map<string, () => void>();
  private chain: Promise<void> = Promise.resolve();

  /** `tenant`: whose token opened the connection; it sees and touches that tenant's runs only. */
  constructor(
    private readonly ws: WebSocket, private readonly deps: SessionDeps, private readonly peer: string,
    private readonly tenant = 'default',
  ) {}

  /** Frames are handled one at a time, in order: a binary chunk must not overtake the request before it. */
  onFrame(data: Buffer, isBinary: boolean): void {
    this.chain = this.chain.then(() => this.handle(data, isBinary)).catch((err) => {
      this.deps.log.error({ peer: this.peer, err: (err as Error).message }, 'unexpected error in session');
      this.send({ type: 'error', code: 'internal', message: `the agent hit an internal error: ${(err as Error).message}` });
    });
  }

  onClose(): void {
    this.download?.abort();
    for (const off of this.following.values()) off();
    this.following.clear();
    for (const off of this.followingRequests.values()) off();
    this.followingRequests.clear();
    if (this.upload) this.failUpload('the client disconnected before the context was fully sent');
  }

  private send(msg: AgentMessage): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    // A client that reads slower than its runs print would make the agent hold the difference: past a bound it
    // is dropped instead (it can attach again from the last sequence number it saw).
    if (this.ws.bufferedAmount > MAX_BUFFERED) {
      this.deps.log.warn({ peer: this.peer, buffered: this.ws.bufferedAmount }, 'dropped a client that reads too slowly');
      this.ws.terminate();
      return;
    }
    this.ws.send(JSON.stringify(msg));
  }

  private async handle(data: Buffer, isBinary: boolean): Promise<void> {
    if (isBinary) return this.onBinary(data);
    const parsed = parseClientMessage(data.toString('utf8'));
    if (!parsed.ok) {
      this.send({ type: 'error', inReplyTo: parsed.inReplyTo, code: parsed.code, message: parsed.message });
      return;
    }
    const msg = parsed.message;
    try {
      await this.dispatch(msg, data.length);
    } catch (err) {
      if (err instanceof RequestError) {
        this.send({ type: 'error', inReplyTo: msg.id, code: err.code, message: err.message });
      } else if (err instanceof EndpointError || err instanceof VolumeError || err instanceof RunRefusedError || err instanceof ScheduleError) {
        this.send({ type: 'error', inReplyTo: msg.id, code: err.code, message: err.message });
      } else if (err instanceof EngineUnavailableError) {
        this.send({ type: 'error', inReplyTo: msg.id, code: 'engine_unavailable', message: err.message });
      } else {
        throw err;
      }
    }
  }

  private async dispatch(msg: ClientMessage, textBytes: number): Promise<void> {
    if (msg.type === 'hello') return this.hello(msg);
    if (!this.helloDone) throw new RequestError('hello_required', 'send `hello` with the protocol version first');
    switch (msg.type) {
      case 'hardware.get':
        return this.send({ type: 'hardware', inReplyTo: msg.id, catalog: { ...this.deps.catalog, engine: await this.deps.engineDescription(), storage: await this.deps.storage() } });
      case 'run.create':
        return this.createRun(msg);
      case 'context.manifest':
        return this.manifestPart(msg, textBytes);
      case 'upload.end':
        return this.endUpload(msg);
      case 'run.cancel': {
        this.deps.runs.cancel(this.findRun(msg.runId));
        return this.send({ type: 'ok', inReplyTo: msg.id });
      }
      case 'run.attach': {
        const run = this.findRun(msg.runId);
        this.send({ type: 'ok', inReplyTo: msg.id });
        return this.follow(run, msg.afterSeq);
      }
      case 'run.list':
        return this.send({
          type: 'runs', inReplyTo: msg.id, runs: this.deps.runs.list().filter((r) => r.tenant === this.tenant).map((r) => r.summary()),
        });
      case 'outputs.get':
        return this.startDownload(msg);
      case 'ports.watch':
        this.findRun(msg.runId).ports.watch(msg.ports);
        return this.send({ type: 'ok', inReplyTo: msg.id });
      case 'outputs.fetched':
        this.deps.outputs.markFetched(this.findRun(msg.runId).id);
        return this.send({ type: 'ok', inReplyTo: msg.id });
      case 'endpoint.deploy': {
        const badHardware = checkHardware(this.deps.catalog, msg.spec.hardware);
        if (badHardware) throw new RequestError('hardware_unavailable', badHardware);
        // Its instances come and go by traffic, several at once: one writer at a time cannot hold there.
        if (msg.spec.volumes?.length) throw new RequestError('volume_refused', 'an endpoint cannot mount volumes (its instances run side by side): deploy it without -v');
        const endpoint = await this.endpoints().deploy(this.tenant, msg.name, msg.spec, msg.settings);
        return this.send({ type: 'endpoint', inReplyTo: msg.id, endpoint });
      }
      case 'endpoint.list':
        return this.send({ type: 'endpoints', inReplyTo: msg.id, endpoints: this.endpoints().list(this.tenant) });
      case 'endpoint.remove':
        this.endpoints().remove(this.tenant, msg.name);
        return this.send({ type: 'ok', inReplyTo: msg.id });
      case 'volume.list': {
        const listed = await this.volumes().list(this.tenant);
        return this.send({ type: 'volumes', inReplyTo: msg.id, ...listed });
      }
      case 'volume.remove':
        await this.volumes().remove(this.tenant, msg.name);
        return this.send({ type: 'ok', inReplyTo: msg.id });
      case 'schedule.add': {
        const badHardware = checkHardware(this.deps.catalog, msg.spec.hardware);
        if (badHardware) throw new RequestError('hardware_unavailable', badHardware);
        const schedule = await this.schedules().add(this.tenant, msg.name, msg.spec, msg.settings);
        return this.send({ type: 'schedule', inReplyTo: msg.id, schedule });
      }
      case 'schedule.list':
        return this.send({ type: 'schedules', inReplyTo: msg.id, schedules: this.schedules().list(this.tenant) });
      case 'schedule.remove':
        this.schedules().remove(this.tenant, msg.name);
        return this.send({ type: 'ok', inReplyTo: msg.id });
      case 'schedule.run':
        return this.send({ type: 'schedule', inReplyTo: msg.id, schedule: await this.schedules().runNow(this.tenant, msg.name) });
      case 'schedule.pause':
        return this.send({ type: 'schedule', inReplyTo: msg.id, schedule: this.schedules().pause(this.tenant, msg.name) });
      case 'schedule.resume':
        return this.send({ type: 'schedule', inReplyTo: msg.id, schedule: this.schedules().resume(this.tenant, msg.name) });
      case 'endpoint.requests': {
        const journal = this.endpoints().journal(this.tenant, msg.name);
        this.send({ type: 'endpoint.requests', inReplyTo: msg.id, name: msg.name, requests: journal.list(msg.afterSeq, msg.limit) });
        if (msg.follow) {
          this.followingRequests.get(msg.name)?.();
          this.followingRequests.set(msg.name, journal.follow((request) => this.send({ type: 'endpoint.request', name: msg.name, request })));
        }
        return;
      }
    }
  }

  private volumes(): NonNullable<SessionDeps['volumes']> {
    if (!this.deps.volumes) throw new RequestError('volume_refused', 'this agent has no volumes');
    return this.deps.volumes;
  }

  private schedules(): Schedules {
    if (!this.deps.schedules) throw new RequestError('bad_message', this.deps.noSchedules ?? 'this agent keeps no schedules');
    return this.deps.schedules;
  }

  private endpoints(): Endpoints {
    if (!this.deps.endpoints) throw new RequestError('bad_message', this.deps.noEndpoints ?? 'this agent serves no endpoints');
    return this.deps.endpoints;
  }

  private hello(msg: Extract<ClientMessage, { type: 'hello' }>): void {
    if (!SUPPORTED_PROTOCOLS.includes(msg.protocol)) {
      throw new RequestError('incompatible_version',
        `this agent (${AGENT_VERSION}) speaks protocol ${SUPPORTED_PROTOCOLS.join(', ')}; the client (${msg.client}) speaks ` +
        `${msg.protocol}. Update whichever is older.`);
    }
    this.helloDone = true;
    this.send({
      type: 'hello', inReplyTo: msg.id, protocol: PROTOCOL_VERSION, agent: AGENT_VERSION,
      capabilities: this.ownsLocalFiles() ? this.deps.capabilities : this.deps.capabilities.filter((c) => c !== 'local-context'),
      engine: this.deps.engine.name,
    });
  }

  private findRun(runId: string): Run {
    const run = this.deps.runs.get(runId);
    // Another tenant's run gets the very answer a run that does not exist gets: its existence is not told.
    if (!run || run.tenant !== this.tenant) throw new RequestError('not_found', `no run ${runId} on this agent`);
    return run;
  }

  private async createRun(msg: Extract<ClientMessage, { type: 'run.create' }>): Promise<void> {
    const { spec } = msg;
    if (this.upload) throw new RequestError('bad_message', `finish uploading the context of ${this.upload.run.id} first`);
    const run = await admitRun(this.deps, spec, this.tenant);
    const upload = !run.warmImage;
    // Whether a manifest or a tar comes is known from the first thing the client sends next.
    if (upload) this.upload = { run, bytes: 0, lastReport: 0 };
    this.send({ type: 'run.accepted', inReplyTo: msg.id, runId: run.id, upload });
    this.follow(run, 0);
  }

  /** One part of a manifest: answers with the contents of it the tenant's store lacks. */
  private async manifestPart(msg: Extract<ClientMessage, { type: 'context.manifest' }>, textBytes: number): Promise<void> {
    const up = this.upload;
    if (!up || up.run.id !== msg.runId) throw new RequestError('bad_message', `no context upload in progress for ${msg.runId}`);
    if (up.failed) throw new RequestError('bad_context', up.failed);
    if (up.tar) throw new RequestError('bad_message', 'this upload already sends a tar: finish it with upload.end');
    const spec = up.run.spec;
    if (!up.manifest) {
      up.local = msg.local && (await this.mayReadLocal(msg.local)) ? msg.local : undefined;
      up.manifest = new ManifestUpload(this.deps.blobs, this.tenant, spec, this.deps.maxContextBytes, up.local?.path);
      if (up.local) this.deps.log.info({ runId: up.run.id }, 'build context read from the client\'s folder');
    }
    let missing: string[];
    try {
      missing = up.manifest.addPart(msg.entries, msg.last, textBytes);
    } catch (err) {
      // The reply tells the client, which sends nothing more for this upload.
      this.failUpload((err as Error).message);
      this.upload = undefined;
      throw new RequestError('bad_context', (err as Error).message);
    }
    up.bytes += textBytes;
    this.reportUpload(up, msg.last);
    this.send({ type: 'context.missing', inReplyTo: msg.id, runId: msg.runId, sha256s: missing, ...(up.local ? { local: true } : {}) });
    if (up.manifest.complete) this.buildWhileUploading(up.run, up.manifest, up.local);
  }

  /**
   * Whether this connection may have the agent read files of its machine: the agent's owner only (a tenant of
   * a shared agent must never make it read the owner's files), and only from this machine's loopback.
   */
  private ownsLocalFiles(): boolean {
    return this.tenant === DEFAULT_TENANT && this.deps.capabilities.includes('local-context')
      && isLoopback(this.peer.slice(0, this.peer.lastIndexOf(':')));
  }

  /** The owner's folder, if this agent sees it as the client described it; otherwise the upload goes on as usual. */
  private async mayReadLocal(local: LocalContext): Promise<boolean> {
    return this.ownsLocalFiles() && (await seesLocalContext(local));
  }

  /**
   * The manifest checked out: the build may start now, on a tar assembled from the store that waits for each
   * content still to come, so the engine takes in the context while the contents are still being uploaded.
   */
  private buildWhileUploading(run: Run, manifest: ManifestUpload, local?: LocalContext): void {
    if (run.done) return manifest.release('the run ended');
    // The contents stay pinned until the build has read them, or the run ends.
    const off = run.follow(run.lastSeq, (_seq, event) => {
      if (isFinal(event)) release();
    });
    const release = (): void => {
      off();
      manifest.release('the run ended before its context was complete');
    };
    const tar = () => manifest.open().once('close', release);
    // A local context is not journaled: a run the agent takes up after a restart never resumes a build (it
    // fails, "run it again", as a half-uploaded one does), so the folder need not outlive the connection.
    const key = local ? localContextKey(this.tenant, local) : contextKey(this.tenant, run.spec);
    run.context!.resolve(Object.assign(tar, { stored: manifest.stored(key) }));
  }

  /** Upload progress: bytes really received, against what is known to come (the whole once the manifest is in). */
  private reportUpload(up: Upload, force = false): void {
    const total = up.manifest ? up.manifest.manifestBytes + up.manifest.askedBytes : up.run.spec.contextBytes;
    const now = Date.now();
    if (force || now - up.lastReport >= UPLOAD_REPORT_MS || up.bytes === total) {
      up.lastReport = now;
      up.run.emit({ kind: 'uploading', bytesDone: up.bytes, bytesTotal: Math.max(total, up.bytes) });
    }
  }

  /** Feeds the run's events after `afterSeq` at the pace this client reads (see RunFeed): never dropped for it. */
  private follow(run: Run, afterSeq: number): void {
    this.following.get(run.id)?.();
    const feed = new RunFeed(run, {
      buffered: () => this.ws.bufferedAmount,
      open: () => this.ws.readyState === this.ws.OPEN,
      send: (seq, event, json, sent) => {
        // The same text as JSON.stringify({ type: 'event', runId, seq, event }), around the event's JSON made once.
        const text = `{"type":"event","runId":${JSON.stringify(run.id)},"seq":${seq},"event":${json ?? JSON.stringify(event)}}`;
        if (sent) this.ws.send(text, sent);
        else this.ws.send(text);
      },
    }, afterSeq);
    this.following.set(run.id, () => feed.stop());
  }

  private async onBinary(chunk: Buffer): Promise<void> {
    const up = this.upload;
    if (!up) {
      this.send({ type: 'error', code: 'unexpected_binary', message: 'a binary frame arrived with no context upload in progress' });
      return;
    }
    if (up.failed) return; // the rest of a refused upload: drop it quietly, the client has been told
    up.bytes += chunk.length;
    if (up.manifest) {
      try {
        await up.manifest.write(chunk);
      } catch (err) {
        this.failUpload((err as Error).message);
        this.send({ type: 'error', code: 'bad_context', message: up.failed! });
        return;
      }
      this.reportUpload(up);
      return;
    }
    const declared = up.run.spec.contextBytes;
    if (up.bytes > declared) {
      this.failUpload(`the context is larger than the ${declared} bytes declared in run.create`);
      this.send({ type: 'error', code: 'bad_context', message: up.failed! });
      return;
    }
    const tar = up.tar ?? this.openTar(up);
    if (!tar.file.write(chunk)) await once(tar.file, 'drain');
    this.reportUpload(up);
  }

  private openTar(up: Upload): NonNullable<Upload['tar']> {
    const path = this.deps.runs.uploadPath(up.run);
    up.tar = { path, file: createWriteStream(path, { mode: 0o600 }) };
    up.tar.file.on('error', (err) => this.failUpload(`the agent could not store the context: ${err.message}`));
    return up.tar;
  }

  private async endUpload(msg: Extract<ClientMessage, { type: 'upload.end' }>): Promise<void> {
    const up = this.upload;
    if (!up || up.run.id !== msg.runId) throw new RequestError('bad_message', `no context upload in progress for ${msg.runId}`);
    this.upload = undefined;
    if (up.failed) throw new RequestError('bad_context', up.failed);
    if (up.manifest) return this.endManifestUpload(msg, up, up.manifest);
    const tar = up.tar ?? this.openTar(up);
    tar.file.end();
    await once(tar.file, 'close');
    if (up.bytes !== msg.bytes || up.bytes !== up.run.spec.contextBytes) {
      return this.rejectUpload(msg.id, up, `received ${up.bytes} context bytes; run.create declared ${up.run.spec.contextBytes} and upload.end ${msg.bytes}`);
    }
    try {
      const checked = await checkContext(tar.path, up.run.spec.dockerfile, up.run.spec.buildArgs);
      if (checked.digest !== up.run.spec.contextDigest) {
        return this.rejectUpload(msg.id, up, 'the context does not match the digest declared in run.create');
      }
    } catch (err) {
      return this.rejectUpload(msg.id, up, (err as Error).message);
    }
    up.run.emit({ kind: 'uploading', bytesDone: up.bytes, bytesTotal: up.bytes });
    up.run.context!.resolve(tar.path);
    this.send({ type: 'ok', inReplyTo: msg.id });
  }

  /** Every asked content is in the store (the build has been reading them since the manifest was complete). */
  private endManifestUpload(msg: Extract<ClientMessage, { type: 'upload.end' }>, up: Upload, manifest: ManifestUpload): void {
    const contentBytes = manifest.receivedBytes;
    try {
      if (msg.bytes !== contentBytes) throw new Error(`received ${contentBytes} content bytes; upload.end says ${msg.bytes}`);
      manifest.finish();
    } catch (err) {
      return this.rejectUpload(msg.id, up, (err as Error).message);
    }
    up.run.emit({ kind: 'uploading', bytesDone: up.bytes, bytesTotal: up.bytes });
    this.send({ type: 'ok', inReplyTo: msg.id });
  }

  private rejectUpload(id: string, up: Upload, message: string): void {
    up.run.context!.reject(new UploadError(message));
    if (up.tar) void rm(up.tar.path, { force: true });
    up.manifest?.release(message);
    this.send({ type: 'error', inReplyTo: id, code: 'bad_context', message });
  }

  private failUpload(message: string): void {
    const up = this.upload;
    if (!up || up.failed) return;
    up.failed = message;
    if (up.tar) {
      up.tar.file.destroy();
      void rm(up.tar.path, { force: true });
    }
    up.manifest?.release(message);
    up.run.context!.reject(new UploadError(message));
    if (this.ws.readyState !== this.ws.OPEN) this.upload = undefined;
  }

  /**
   * Starts a download beside the connection's other traffic: it may wait for the run to end and take as long
   * as the archive is large, while the client goes on sending requests on the same connection.
   */
  private startDownload(msg: Extract<ClientMessage, { type: 'outputs.get' }>): void {
    const run = this.findRun(msg.runId);
    if (this.download) throw new RequestError('bad_message', 'one outputs download at a time on a connection; wait for `outputs.end`');
    const abort = new AbortController();
    this.download = abort;
    void sendOutputs(this.deps.outputs, {
      id: msg.id, run, offset: msg.offset, wait: msg.wait, signal: abort.signal,
      send: (m) => this.send(m),
      sendBinary: (chunk) => new Promise<void>((resolve, reject) => {
        if (this.ws.readyState !== this.ws.OPEN) return reject(new Error('the connection closed'));
        this.ws.send(chunk, { binary: true }, (e) => (e ? reject(e) : resolve()));
      }),
    }).catch((err) => {
      if (err instanceof OutputsRequestError) this.send({ type: 'error', inReplyTo: msg.id, code: err.code, message: err.message });
      else if (!abort.signal.aborted) {
        this.deps.log.warn({ peer: this.peer, runId: run.id, err: (err as Error).message }, 'outputs download failed');
        this.send({ type: 'error', inReplyTo: msg.id, code: 'internal', message: `the outputs of ${run.id} could not be sent: ${(err as Error).message}` });
      }
    }).finally(() => {
      if (this.download === abort) this.download = undefined;
    });
  }
}
