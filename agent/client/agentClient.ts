/**
 * A client of the agent's wire protocol, shared by the CLI and the VS Code extension: one WebSocket,
 * requests matched to replies by id, run events routed to per-run listeners, binary frames for the
 * context upload and the outputs download.
 */
import { createReadStream } from 'node:fs';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import {
  AgentMessage, Catalog, ClientMessageInput, ErrorCode, PROTOCOL_VERSION, RunEvent, RunSpecInput, RunSummary,
  parseAgentMessage, MAX_FRAME, CHUNK_SIZE, AGENT_VERSION,
} from '../protocol';

export class AgentError extends Error {
  constructor(readonly code: ErrorCode | 'connection', message: string) {
    super(message);
    this.name = 'AgentError';
  }
}

export type EventListener = (seq: number, event: RunEvent, runId: string) => void;
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
  private download?: { runId: string; chunks: Buffer[]; resolve(b: Buffer): void; reject(e: Error): void };
  private closedReason?: string;
  hello!: Hello;

  private constructor(private readonly ws: WebSocket, readonly url: string) {
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
    const client = new AgentClient(ws, url);
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
  request(body: Request, onReply?: (r: Reply) => void): Promise<Reply> {
    if (this.closedReason) return Promise.reject(new AgentError('connection', this.closedReason));
    const id = randomUUID();
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

  /**
   * Creates a run. `listener` is registered before any event of the run can arrive. When the agent asks
   * for the context (cold start), the tar at `contextTar` is streamed as binary frames.
   */
  async createRun(
    spec: RunSpecInput, contextTar: string, listener: EventListener,
  ): Promise<{ runId: string; uploaded: boolean }> {
    let off: (() => void) | undefined;
    const reply = await this.request({ type: 'run.create', spec }, (r) => {
      if (r.type === 'run.accepted') off = this.on(r.runId, listener);
    });
    if (reply.type !== 'run.accepted') throw new AgentError('internal', `unexpected reply: ${reply.type}`);
    if (reply.upload) {
      try {
        const bytes = await this.sendFile(contextTar);
        await this.request({ type: 'upload.end', runId: reply.runId, bytes });
      } catch (err) {
        off?.();
        throw err;
      }
    }
    return { runId: reply.runId, uploaded: reply.upload };
  }

  /** Downloads a finished run's outputs as one tar buffer (empty when there are none). */
  async outputs(runId: string): Promise<{ tar: Buffer; files: number }> {
    if (this.download) throw new AgentError('internal', 'one download at a time per connection');
    const done = new Promise<Buffer>((resolve, reject) => {
      this.download = { runId, chunks: [], resolve, reject };
    });
    let files = 0;
    try {
      const r = await this.request({ type: 'outputs.get', runId });
      if (r.type !== 'outputs') throw new AgentError('internal', `unexpected reply: ${r.type}`);
      files = r.files;
    } catch (err) {
      this.download = undefined;
      throw err;
    }
    return { tar: await done, files };
  }

  private async sendFile(path: string): Promise<number> {
    let bytes = 0;
    for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_SIZE })) {
      if (this.closedReason) throw new AgentError('connection', this.closedReason);
      bytes += (chunk as Buffer).length;
      // Wait for each frame to be written: memory stays at one chunk however large the context.
      await new Promise<void>((resolve, reject) =>
        this.ws.send(chunk, { binary: true }, (err) => (err ? reject(new AgentError('connection', err.message)) : resolve())),
      );
    }
    return bytes;
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      this.download?.chunks.push(Buffer.from(data));
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
    if (msg.type === 'outputs.end' && this.download) {
      const d = this.download;
      this.download = undefined;
      d.resolve(Buffer.concat(d.chunks));
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
