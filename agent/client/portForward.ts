/**
 * The client's end of `-p`: a local listener per forward, and for each connection accepted there a tunnel
 * to the container's port through the agent (agent/tunnel/). The listeners open before the run starts, so
 * a port already in use fails the command at once, as `docker run -p` does; connections made before the
 * container runs wait for it. When the run ends, open connections are closed and the listeners with them,
 * so a late connection is refused by this machine at once rather than left hanging.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { RunEvent } from '../protocol';
import type { WebSocket } from 'ws';
import { TunnelRefused } from './openTunnel';
import { pump } from '../tunnel/pump';
import { splice } from '../tunnel/splice';
import type { Publish } from '../cli/publishFlag';

export interface Forward extends Publish {
  /** The port actually listened on (the asked one, or the free one taken). */
  boundPort: number;
}

export interface PortForwardOptions {
  /**
   * Opens a tunnel (AgentClient.tunnel of the connection to the agent). A tunnel is a WebSocket of its own:
   * it needs the agent's address and token, not the protocol connection, so it works across reconnects.
   */
  tunnel(runId: string, port: number, task?: number): Promise<WebSocket>;
  /**
   * A plain byte stream to the container's port, used instead of `tunnel` when there is one: made in this
   * process when the agent is this process (the embedded one), or a raw TCP upgrade to a standalone agent
   * that offers `raw-tunnel`; the same refusals (TunnelRefused). Null: use `tunnel`.
   */
  dial?(runId: string, port: number, task?: number): Promise<Duplex | null>;
  /** Of a fan-out run: forward to this task's container (default 0). */
  task?: number;
  /** A container port first accepted a connection. */
  onReady?(forward: Forward, ms: number): void;
  /** Something the user should know, said once per distinct message (a refused connection and why). */
  onNote?(line: string): void;
}

/** How long a connection waits for the agent to have the run's container (its `running` may come first). */
const NOT_RUNNING_RETRY_MS = 5000;

export class PortForwards {
  private runId?: string;
  private running = false;
  private ended?: string;
  private readonly held: Array<{ socket: net.Socket; forward: Forward }> = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly tunnels = new Set<WebSocket>();
  private readonly servers: net.Server[] = [];
  private readonly said = new Set<string>();

  private constructor(readonly forwards: Forward[], private readonly opts: PortForwardOptions) {}

  /** Listens on every forward's local address, or fails naming the one that cannot be had. */
  static async listen(publishes: Publish[], opts: PortForwardOptions): Promise<PortForwards> {
    const pf = new PortForwards([], opts);
    try {
      for (const p of publishes) {
        const forward: Forward = { ...p, boundPort: 0 };
        const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (socket) => pf.accept(socket, forward));
        await new Promise<void>((resolve, reject) => {
          server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(
            err.code === 'EADDRINUSE' ? `-p ${p.host}:${p.localPort}:${p.containerPort}: ${p.host}:${p.localPort} is already in use on this machine`
              : `-p ${p.host}:${p.localPort}:${p.containerPort}: cannot listen on ${p.host}:${p.localPort} (${err.message})`,
          )));
          server.listen(p.localPort, p.host, () => resolve());
        });
        forward.boundPort = (server.address() as net.AddressInfo).port;
        pf.servers.push(server);
        pf.forwards.push(forward);
      }
    } catch (err) {
      pf.close('could not listen');
      throw err;
    }
    return pf;
  }

  /** The run the forwards go to, once it is known. */
  setRun(runId: string): void {
    this.runId = runId;
    this.release();
  }

  /** Follows the run's events: `running` lets held connections through, `port` announces, the final event ends all. */
  event(e: RunEvent): void {
    if (e.kind === 'running' && (e.task === undefined || e.task === (this.opts.task ?? 0))) {
      this.running = true;
      this.release();
    } else if (e.kind === 'port' && (e.task ?? 0) === (this.opts.task ?? 0)) {
      for (const f of this.forwards) if (f.containerPort === e.port) this.opts.onReady?.(f, e.ms);
    } else if (e.kind === 'exited' || e.kind === 'failed' || e.kind === 'cancelled') {
      this.close(`the run ${e.kind === 'exited' ? 'exited' : e.kind === 'failed' ? 'failed' : 'was cancelled'}`);
    }
  }

  /** Stops listening and closes every forwarded connection. */
  close(why: string): void {
    if (this.ended) return;
    this.ended = why;
    for (const s of this.servers) s.close();
    for (const h of this.held.splice(0)) h.socket.destroy();
    for (const s of this.sockets) s.destroy();
    // Not a closing handshake: the run is over, and a wait for the agent's answer would keep this process up.
    for (const ws of this.tunnels) ws.terminate();
  }

  private accept(socket: net.Socket, forward: Forward): void {
    socket.on('error', () => {});
    if (this.ended) return void socket.destroy();
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (!this.runId || !this.running) this.held.push({ socket, forward });
    else void this.connect(socket, forward);
  }

  private release(): void {
    if (!this.runId || !this.running) return;
    for (const h of this.held.splice(0)) void this.connect(h.socket, h.forward);
  }

  private async connect(socket: net.Socket, forward: Forward): Promise<void> {
    const since = Date.now();
    for (;;) {
      if (socket.destroyed || this.ended) return void socket.destroy();
      try {
        const conn = await this.opts.dial?.(this.runId!, forward.containerPort, this.opts.task);
        if (conn) {
          if (socket.destroyed || this.ended) return void conn.destroy();
          splice(socket, conn);
          socket.resume();
          return;
        }
        const ws = await this.opts.tunnel(this.runId!, forward.containerPort, this.opts.task);
        if (socket.destroyed || this.ended) return void ws.terminate();
        this.tunnels.add(ws);
        ws.once('close', () => this.tunnels.delete(ws));
        pump(ws, socket);
        socket.resume();
        return;
      } catch (err) {
        const retry = err instanceof TunnelRefused && err.status === 409 && Date.now() - since < NOT_RUNNING_RETRY_MS;
        if (retry) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        this.note(`${forward.host}:${forward.boundPort}: ${(err as Error).message}`);
        socket.destroy();
        return;
      }
    }
  }

  private note(line: string): void {
    if (this.said.has(line)) return;
    this.said.add(line);
    this.opts.onNote?.(line);
  }
}
