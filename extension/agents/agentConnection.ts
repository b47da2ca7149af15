/**
 * One agent's connection: connects through the shared AgentClient, fetches the catalog, reports its state,
 * and when the connection drops says so and reconnects with exponential backoff. Waiting callers get a
 * clear error after a bounded time: nothing hangs on a dead agent.
 */
import * as vscode from 'vscode';
// Type-only: the client (with zod and ws) is loaded on first connect, keeping activation light.
import type { AgentClient } from '../../agent/client/agentClient';
import type { Catalog } from '../../agent/protocol';
import { errorMessage, type Log } from '../log';
import type { Endpoint } from './localAgent';

export type ConnectionState =
  | { kind: 'idle' }
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected'; agentVersion: string; engine: string }
  | { kind: 'retrying'; reason: string; retryAt: number }
  /** Will not retry on its own: the user must act (start Docker, set a token...). */
  | { kind: 'failed'; reason: string };

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];

export class AgentConnection implements vscode.Disposable {
  private client?: AgentClient;
  private connecting?: Promise<AgentClient>;
  private retryTimer?: NodeJS.Timeout;
  private attempt = 0;
  private disposed = false;
  private _state: ConnectionState = { kind: 'idle' };
  catalog?: Catalog;
  private readonly stateChanged = new vscode.EventEmitter<ConnectionState>();
  private readonly connectedEmitter = new vscode.EventEmitter<AgentClient>();
  readonly onDidChangeState = this.stateChanged.event;
  /** Fires on every (re)connection, after the catalog is fetched: runs in progress re-attach here. */
  readonly onDidConnect = this.connectedEmitter.event;

  constructor(
    readonly name: string,
    /** Where to connect; throws a user-facing error when there is nothing to connect to. */
    private readonly endpoint: () => Promise<Endpoint>,
    private readonly log: Log,
    /** Errors for which retrying cannot help. */
    private readonly isPermanent: (err: unknown) => boolean = () => false,
  ) {}

  get state(): ConnectionState {
    return this._state;
  }

  private setState(s: ConnectionState): void {
    this._state = s;
    this.stateChanged.fire(s);
  }

  /** The connected client, connecting first if needed; rejects after `timeoutMs` with what went wrong. */
  async get(timeoutMs = 30_000): Promise<AgentClient> {
    if (this.client && !this.client.closed) return this.client;
    if (this._state.kind === 'failed' || this._state.kind === 'retrying' || this._state.kind === 'idle') {
      // An explicit request is a good reason to try now rather than at the next backoff step.
      this.attempt = 0;
      clearTimeout(this.retryTimer);
    }
    const p = this.connect();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`agent "${this.name}" did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts connecting (if not already); never rejects unhandled. */
  connect(): Promise<AgentClient> {
    if (this.client && !this.client.closed) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const p = this.doConnect();
    this.connecting = p;
    p.catch(() => {}).finally(() => {
      if (this.connecting === p) this.connecting = undefined;
    });
    return p;
  }

  private async doConnect(): Promise<AgentClient> {
    if (this.disposed) throw new Error('connection closed');
    this.attempt++;
    this.setState({ kind: 'connecting', attempt: this.attempt });
    try {
      const ep = await this.endpoint();
      const { AgentClient } = await import('../../agent/client/agentClient');
      const client = await AgentClient.connect(ep.url, { token: ep.token, ca: ep.ca, clientName: 'bytenite-vscode/0.1.0', timeoutMs: 10_000 });
      if (this.disposed) {
        client.close();
        throw new Error('connection closed');
      }
      this.catalog = await client.hardware();
      this.client = client;
      this.attempt = 0;
      // The catalog names the engine, its version and how the agent found it (a context, DOCKER_HOST, the default socket).
      const engine = this.catalog.engine ?? client.hello.engine;
      this.log.info(`connected to agent "${this.name}" at ${ep.url} (agent ${client.hello.agent}, engine ${engine})`);
      client.onClosed((reason) => this.onDropped(client, reason));
      this.setState({ kind: 'connected', agentVersion: client.hello.agent, engine });
      this.connectedEmitter.fire(client);
      return client;
    } catch (err) {
      const reason = errorMessage(err);
      this.log.warn(`agent "${this.name}": ${reason}`);
      if (!this.disposed) this.scheduleRetry(reason, this.isPermanent(err));
      throw err;
    }
  }

  private onDropped(client: AgentClient, reason: string): void {
    if (this.client !== client || this.disposed) return;
    this.client = undefined;
    this.log.warn(`lost agent "${this.name}": ${reason}`);
    this.scheduleRetry(`connection lost: ${reason}`, false);
  }

  private scheduleRetry(reason: string, permanent: boolean): void {
    clearTimeout(this.retryTimer);
    if (permanent) {
      this.setState({ kind: 'failed', reason });
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.setState({ kind: 'retrying', reason, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => void this.connect().catch(() => {}), delay);
  }

  /** Closes the connection and stops retrying. */
  disconnect(reason = 'disconnected'): void {
    clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = undefined;
    c?.close();
    this.attempt = 0;
    this.setState({ kind: 'failed', reason });
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.retryTimer);
    this.client?.close();
    this.stateChanged.dispose();
    this.connectedEmitter.dispose();
  }
}
