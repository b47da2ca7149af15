/**
 * A client of the agent's wire protocol, shared by the CLI and the VS Code extension: one WebSocket,
 * requests matched to replies by id, run events routed to per-run listeners, binary frames for the
 * context upload and the outputs download.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { Duplex } from 'node:stream';
import type {
  AgentMessage, Catalog, ClientMessageInput, EndpointSettingsInput, EndpointSummary, ScheduleSettingsInput, ScheduleSummary, RequestRecord, RunEvent, RunSpecInput, RunSummary,
  LocalContext,
} from '../protocol';
// Not ../protocol: that builds every schema at load (see protocolSchemas()).
import { parseAgentMessage, protocolSchemas } from '../protocol/parse';
import { PROTOCOL_VERSION, MAX_FRAME, AGENT_VERSION } from '../protocol/version';
import { isLoopback } from '../network/loopback';
import type { ListedContext } from '../context/packContext';
import { sendManifest, sendTar, type UploadChannel } from './contextUpload';
import { AgentError } from './agentError';
import { openExec, type ExecOptions } from './openExec';
import { openStdin } from './openStdin';
import { openRawTunnel, openTunnel, type TunnelAuth } from './openTunnel';
import { openEndpointProxy, type EndpointProxy } from './endpointProxy';

export { AgentError };

export type EventListener = (seq: number, event: RunEvent, runId: string) => void;
export type OutputsStart = Extract<AgentMessage, { type: 'outputs' }>;
export type OutputsEnd = Extract<AgentMessage, { type: 'outputs.end' }>;

interface Download {
  id: string;
  runId: string;
  sink: NodeJS.WritableStream;
  resolve(end: OutputsEnd): void;
  reject(e: Error): void;
}
type Hello = Extract<AgentMessage, { type: 'hello' }>;
type Reply = Exclude<AgentMessage, { type: 'event' }>;
type Request = ClientMessageInput extends infer M ? (M extends { id: string } ? Omit<M, 'id'> : never) : never;

interface Pending {
  resolve(reply: Reply): void;
  reject(err: Error): void;
  /** Runs synchronously when the reply arrives, before any later frame is handled. */
  onReply?(reply: Reply): void;
}

export interface ConnectOptions {
  token: string;
  /** Extra CA certificate(s) for `wss://` agents with a self-signed certificate. */
  ca?: string | Buffer;
  clientName?: string;
  timeoutMs?: number;
}

export class AgentClient {
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Map<string, Set<EventListener>>();
  private readonly closeListeners = new Set<(reason: string) => void>();
  private readonly requestListeners = new Map<string, Set<(r: RequestRecord) => void>>();
  private download?: Download;
  private closedReason?: string;
  hello!: Hello;

  private constructor(private readonly ws: WebSocket, readonly url: string, private readonly auth: TunnelAuth) {
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('close', (code, reason) => this.onClose(`connection closed (${code}${reason.length ? `: ${reason}` : ''})`));
    ws.on('error', (err) => this.onClose(`connection error: ${err.message}`));
  }

  /** Opens a connection and exchanges hellos. Rejects with a message a user can act on. */
  static async connect(url: string, opts: ConnectOptions): Promise<AgentClient> {
    const ws = new WebSocket(url, {
      headers: { Authorization: `Bearer ${opts.token}` },
      ca: opts.ca, maxPayload: MAX_FRAME, handshakeTimeout: opts.timeoutMs ?? 10_000, perMessageDeflate: false,
    });
    // The schemas are built while the connection opens: the hello reply is the first message they check.
    setImmediate(protocolSchemas);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        const why = res.statusCode === 401 ? 'the agent refused the token (401): check --token-file or the token you set'
          : res.statusCode === 429 ? `too many failed authentications from this address (429): retry in ${res.headers['retry-after'] ?? 'a few'} s`
          : `HTTP ${res.statusCode}`;
        reject(new AgentError('connection', `cannot connect to ${url}: ${why}`));
        ws.terminate();
      });
      ws.once('error', (err) => reject(new AgentError('connection', `cannot connect to ${url}: ${err.message}`)));
    });
    const client = new AgentClient(ws, url, { token: opts.token, ca: opts.ca });
    const reply = await client.request({ type: 'hello', protocol: PROTOCOL_VERSION, client: opts.clientName ?? `bytenite-client/${AGENT_VERSION}` });
    if (reply.type !== 'hello') throw new AgentError('internal', `unexpected reply to hello: ${reply.type}`);
    client.hello = reply;
    return client;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  onClosed(listener: (reason: string) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    this.ws.close(1000, 'client done');
  }

  /** Sends a request and resolves with its reply; an `error` reply rejects with an AgentError. */
  request(body: Request, onReply?: (r: Reply) => void, id: string = randomUUID()): Promise<Reply> {
    if (this.closedReason) return Promise.reject(new AgentError('connection', this.closedReason));
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onReply });
      this.ws.send(JSON.stringify({ ...body, id }), (err) => {
        if (err) {
          this.pending.delete(id);
          reject(new AgentError('connection', err.message));
        }
      });
    });
  }

  async hardware(): Promise<Catalog> {
    const r = await this.request({ type: 'hardware.get' });
    if (r.type !== 'hardware') throw new AgentError('internal', `unexpected reply: ${r.type}`);
    return r.catalog;
  }

  async list(): Promise<RunSummary[]> {
    const r = await this.request({ type: 'run.list' });
    if (r.type !== 'runs') throw new AgentError('internal', `unexpected reply: ${r.type}`);
    return r.runs;
  }

  /** Registers (or replaces) an endpoint whose image a `buildOnly` run of `spec` built. */
  async deployEndpoint(name: string, spec: RunSpecInput, settings: EndpointSettingsInput): Promise<EndpointSummary> {
    const r = await this.request({ type: 'endpoint.deploy', name, spec, settings });
    if (r.type !== 'endpoint') throw new AgentError('internal', `unexpected reply: ${r.type}`);
    return r.endpoint;
  }

  async endpoints(): Promise<EndpointSummary[]> {
    const r = await this.request({ type: 'endpoint.list' });
    if (r.type !== 'endpoints') throw new AgentError('internal', `unexpected reply: ${r.type}`);
    return r.endpoints;
  }

  async removeEndpoint(name: string): Promise<void> {
    await this.request({ type: 'endpoint.remove', name });
  }

  /** Registers (or replaces) a schedule whose image a `buildOnly` run of `spec` built. */
  async addSchedule(name: string, spec: RunSpecInput, settings: ScheduleSettingsInput): Promise<ScheduleSummary> {
    return this.scheduleReply({ type: 'schedule.add', name, spec, settings });
  }

  async schedules(): Promise<ScheduleSummary[]> {
    const r = await this.request({ type: 'schedule.list' });
    if (r.type !== 'schedules') throw new AgentError('internal', `unexpected reply: ${r.type}`);
    return r.schedules;
  }

  async removeSchedule(name: string): Promise<void> {
    await this.request({ type: 'schedule.remove', name });
  }

  /** `run`: now, once; `pause`, `resume`. The reply is the schedule as it stands after. */
  async scheduleAction(action: 'run' | 'pause' | 'resume', name: string): Promise<ScheduleSummary> {
    return this.scheduleReply({ type: `schedule.${action}`, name });
  }

  private async scheduleReply(msg: Parameters<AgentClient['request']>[0]): Promise<ScheduleSummary> {
    const r = await this.request(msg);
    if (r.type !== 'schedule') throw new AgentError('internal', `unexpected reply: ${r.type}`);
    return r.schedule;
  }

  /** The HTTP(S) address of an endpoint (`path` as the agent lists it: `/e/NAME/`), on the agent's own listener. */
  endpointUrl(path: string): string {
    return `${this.url.replace(/^ws/, 'http').replace(/\/+$/, '')}${path}`;
  }

  /** A local address (127.0.0.1) that forwards to the endpoint with this connection's token: for a browser. */
  proxyEndpoint(name: string, port?: number): Promise<EndpointProxy> {
    return openEndpointProxy(this.url, this.auth, name, port);
  }

  /** Stops following an endpoint's requests (an `endpoint.requests` with `follow` keeps sending until the connection ends). */
  offEndpointRequests(name: string, listener: (r: RequestRecord) => void): void {
    const set = this.requestListeners.get(name);
    set?.delete(listener);
    if (set?.size === 0) this.requestListeners.delete(name);
  }

  /** This tenant's named volumes, their sizes and what they cost. */
  async volumes(): Promise<Extract<AgentMessage, { type: 'volumes' }>> {
    const r = await this.request({ type: 'volume.list' });
    if (r.type !== 'volumes') throw new AgentError('internal', `unexpected reply: ${r.type}`);
    return r;
  }

  async removeVolume(name: string): Promise<void> {
    await this.request({ type: 'volume.remove', name });
  }

  /** The latest requests of an endpoint; with `onRequest`, each later one too, as it ends. */
  async endpointRequests(name: string, opts: { afterSeq?: number; limit?: number; onRequest?(r: RequestRecord): void } = {}): Promise<RequestRecord[]> {
    const follow = Boolean(opts.onRequest);
    if (opts.onRequest) {
      let set = this.requestListeners.get(name);
      if (!set) this.requestListeners.set(name, (set = new Set()));
      set.add(opts.onRequest);
    }
    const r = await this.request({ type: 'endpoint.requests', name, afterSeq: opts.afterSeq, limit: opts.limit, follow });
    if (r.type !== 'endpoint.requests') throw new AgentError('internal', `unexpected reply: ${r.type}`);
    return r.requests;
  }

  async cancel(runId: string): Promise<void> {
    await this.request({ type: 'run.cancel', runId });
  }

  /** Follows a run's events after `afterSeq` (replayed first, then live). */
  async attach(runId: string, afterSeq: number, listener: EventListener): Promise<() => void> {
    const off = this.on(runId, listener);
    try {
      await this.request({ type: 'run.attach', runId, afterSeq });
    } catch (err) {
      off();
      throw err;
    }
    return off;
  }

  /**
   * A WebSocket carrying one TCP connection to `port` of the run's container (task `task`'s on a fan-out
   * run), on a connection of its own: see agent/tunnel/pump.ts for what travels on it.
   */
  tunnel(runId: string, port: number, task?: number): Promise<WebSocket> {
    return openTunnel(this.url, this.auth, runId, port, task);
  }

  /**
   * The same connection as plain TCP, when the agent offers `raw-tunnel` (null when it does not: use
   * `tunnel`): no framing or masking on the way, the forward's fastest path to a standalone agent.
   */
  async dialTunnel(runId: string, port: number, task?: number): Promise<Duplex | null> {
    if (!this.hello.capabilities.includes('raw-tunnel')) return null;
    return openRawTunnel(this.url, this.auth, runId, port, task);
  }

  /** An interactive run's stdin, on a WebSocket of its own (agent/interactive/stdinServer.ts). */
  stdin(runId: string, size?: { cols?: number; rows?: number }): Promise<WebSocket> {
    return openStdin(this.url, this.auth, runId, size);
  }

  /**
   * A command in the run's container, on a WebSocket of its own (agent/interactive/execServer.ts). Attach
   * the message listener in `early`: the first output can arrive with the upgrade's answer.
   */
  exec(runId: string, o: ExecOptions, early?: (ws: WebSocket) => void): Promise<WebSocket> {
    return openExec(this.url, this.auth, runId, o, early);
  }

  /** Asks for a `port` event for each of `ports` of the run once it accepts connections. */
  async watchPorts(runId: string, ports: number[]): Promise<void> {
    await this.request({ type: 'ports.watch', runId, ports });
  }

  /** Adds a listener for a run's events; returns the function that removes it. */
  on(runId: string, listener: EventListener): () => void {
    let set = this.listeners.get(runId);
    if (!set) this.listeners.set(runId, (set = new Set()));
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0) this.listeners.delete(runId);
    };
  }

  /** Whether the agent keeps a content store: it then takes a manifest and only the contents it lacks. */
  get hasContextStore(): boolean {
    return this.hello.capabilities.includes('context-store');
  }

  /**
   * Whether the agent may read a context from this machine's folders itself (see localIdentity.ts): it offers
   * it (to its owner only) and it is on loopback, which is also why the folder's path may be told to it.
   */
  get takesLocalContext(): boolean {
    return this.hello.capabilities.includes('local-context') && isLoopback(new URL(this.url).hostname);
  }

  /**
   * Creates a run. `listener` is registered before any event of the run can arrive. When the agent asks
   * for the context (cold start), it gets the listed context as a manifest and then the file contents it
   * asks for (none when it takes what `local` describes, the folder, and reads it itself: described only then,
   * a warm start pays nothing for it); or, given a tar path (an agent without a content store), the whole tar.
   * `onAccepted` runs as the acceptance arrives, before any upload.
   */
  async createRun(
    spec: RunSpecInput, context: string | ListedContext, listener: EventListener,
    local?: () => Promise<LocalContext | undefined>, onAccepted?: () => void,
  ): Promise<{ runId: string; uploaded: boolean; local: boolean }> {
    let off: (() => void) | undefined;
    const reply = await this.request({ type: 'run.create', spec }, (r) => {
      if (r.type !== 'run.accepted') return;
      off = this.on(r.runId, listener);
      onAccepted?.();
    });
    if (reply.type !== 'run.accepted') throw new AgentError('internal', `unexpected reply: ${reply.type}`);
    let readLocally = false;
    if (reply.upload) {
      try {
        let bytes: number;
        const channel: UploadChannel = { request: (m) => this.request(m), sendBinary: (d) => this.sendBinary(d) };
        if (typeof context === 'string') bytes = await sendTar(channel, context);
        else ({ bytes, local: readLocally } = await sendManifest(channel, reply.runId, context, await local?.()));
        await this.request({ type: 'upload.end', runId: reply.runId, bytes });
      } catch (err) {
        off?.();
        throw err;
      }
    }
    return { runId: reply.runId, uploaded: reply.upload, local: readLocally };
  }

  /**
   * Downloads a run's output archive from byte `offset` into `sink`, as the frames arrive: the socket is
   * paused while `sink` is full, so memory stays bounded whatever the size. `wait`: for a run still in
   * progress, the agent answers once its container stops and sends the archive as it copies it out.
   * Resolves with the agent's `outputs.end` (size, SHA-256, counts); rejects with an AgentError.
   */
  async downloadOutputs(runId: string, sink: NodeJS.WritableStream, opts: { offset?: number; wait?: boolean; onStart?(r: OutputsStart): void } = {}): Promise<OutputsEnd> {
    if (this.download) throw new AgentError('internal', 'one download at a time per connection');
    const id = randomUUID();
    const done = new Promise<OutputsEnd>((resolve, reject) => {
      this.download = { id, runId, sink, resolve, reject };
    });
    done.catch(() => {}); // awaited below once the request was answered
    try {
      const r = await this.request({ type: 'outputs.get', runId, offset: opts.offset ?? 0, wait: opts.wait ?? false }, undefined, id);
      if (r.type !== 'outputs') throw new AgentError('internal', `unexpected reply: ${r.type}`);
      opts.onStart?.(r);
    } catch (err) {
      this.download = undefined;
      throw err;
    }
    const end = await done;
    if (end.error) throw new AgentError('not_found', end.error);
    return end;
  }

  /** Tells the agent the outputs are written and checked: it may remove them first when it needs room. */
  async outputsFetched(runId: string): Promise<void> {
    await this.request({ type: 'outputs.fetched', runId });
  }

  private sendBinary(data: Buffer): Promise<void> {
    if (this.closedReason) return Promise.reject(new AgentError('connection', this.closedReason));
    return new Promise<void>((resolve, reject) =>
      this.ws.send(data, { binary: true }, (err) => (err ? reject(new AgentError('connection', err.message)) : resolve())),
    );
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const d = this.download;
      // A full sink holds the socket: the agent's sends wait, and no frame piles up here.
      if (d && !d.sink.write(data) && !this.ws.isPaused) {
        this.ws.pause();
        d.sink.once('drain', () => this.ws.resume());
      }
      return;
    }
    const parsed = parseAgentMessage(data.toString('utf8'));
    if (!parsed.ok) {
      // A newer agent may send what we cannot read; say so instead of failing silently.
      this.onClose(`unreadable message from agent: ${parsed.message}`);
      this.ws.terminate();
      return;
    }
    const msg = parsed.message;
    if (msg.type === 'event') {
      for (const l of this.listeners.get(msg.runId) ?? []) l(msg.seq, msg.event, msg.runId);
      return;
    }
    if (msg.type === 'endpoint.request') {
      for (const l of this.requestListeners.get(msg.name) ?? []) l(msg.request);
      return;
    }
    if (this.download && msg.inReplyTo === this.download.id && (msg.type === 'outputs.end' || msg.type === 'error') && !this.pending.has(msg.inReplyTo)) {
      const d = this.download;
      this.download = undefined;
      if (msg.type === 'error') d.reject(new AgentError(msg.code, msg.message));
      else d.resolve(msg);
      return;
    }
    const pending = msg.inReplyTo !== undefined ? this.pending.get(msg.inReplyTo) : undefined;
    if (!pending) return;
    this.pending.delete(msg.inReplyTo!);
    if (msg.type === 'error') {
      pending.reject(new AgentError(msg.code, msg.message));
      return;
    }
    pending.onReply?.(msg);
    pending.resolve(msg);
  }

  private onClose(reason: string): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    for (const p of this.pending.values()) p.reject(new AgentError('connection', reason));
    this.pending.clear();
    this.download?.reject(new AgentError('connection', reason));
    this.download = undefined;
    for (const l of this.closeListeners) l(reason);
  }
}
