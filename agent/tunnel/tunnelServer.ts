/**
 * The agent's end of port forwards: `GET /tunnel/RUN/PORT[?task=K]`, an upgrade authenticated with the same
 * token as the protocol's connection, carries one TCP connection to PORT of the run's container (task K's,
 * on a fan-out run). Two upgrades are taken: `Upgrade: bytenite-tcp` (capability `raw-tunnel`), after whose
 * 101 the socket is the container's connection, byte for byte; and a WebSocket (agent/tunnel/pump.ts), for
 * clients that can only speak WebSocket (a browser, an older CLI). The raw one exists for speed: framing and
 * masking every chunk both ways cost about a third of a forward's requests/s (README, Forwards).
 * Everything is checked before the upgrade (agent/tunnel/admitTunnel.ts), so a refusal is a plain HTTP
 * status with the reason as its body. The bytes themselves are never logged.
 */
import type http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { RunManager } from '../runs/runManager';
import type { Logger } from '../log';
import { pump } from './pump';
import { splice } from './splice';
import { admitTunnel, type Admitted } from './admitTunnel';
import { refuseUpgrade } from './refuse';
import { TunnelRefused } from './tunnelRefused';

const TUNNEL_PATH = /^\/tunnel\/(r-[a-z0-9]{6,40})\/(\d{1,5})(?:\?task=(\d{1,3}))?$/;

export function isTunnelRequest(url: string | undefined): boolean {
  return Boolean(url?.startsWith('/tunnel/'));
}

/** The upgrade token of a raw tunnel: after the 101, plain TCP. */
export const RAW_TUNNEL_UPGRADE = 'bytenite-tcp';

export interface TunnelDeps {
  runs: RunManager;
  log: Logger;
  wss: WebSocketServer;
}



export async function openTunnel(req: http.IncomingMessage, socket: Duplex, head: Buffer, tenant: string, peer: string, deps: TunnelDeps): Promise<void> {
  const m = TUNNEL_PATH.exec(req.url ?? '');
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) return refuseUpgrade(socket, 400, 'a tunnel is asked for as /tunnel/RUN_ID/PORT, with PORT from 1 to 65535 (and ?task=K on a fan-out run)');
  const [runId, task] = [m[1], m[3] === undefined ? 0 : Number(m[3])];
  let admitted: Admitted;
  try {
    admitted = await admitTunnel(deps.runs, tenant, runId, port, task);
  } catch (err) {
    if (err instanceof TunnelRefused) return refuseUpgrade(socket, err.status, err.message);
    throw err;
  }
  const { run, target, conn } = admitted;
  if (socket.destroyed) {
    conn.destroy();
    return;
  }
  if (req.headers.upgrade?.toLowerCase() === RAW_TUNNEL_UPGRADE) return spliceRaw(socket as net.Socket, head, admitted, task, peer, deps);
  deps.wss.handleUpgrade(req, socket, head, (ws) => {
    const opened = Date.now();
    const close = (code: number, reason: string) => {
      if (ws.readyState === ws.OPEN) ws.close(code, reason.slice(0, 120));
      conn.destroy();
    };
    // The container may have stopped while the upgrade was made: then this tunnel is cut at once.
    if (run.ports.target(task) !== target) {
      close(4001, run.ports.ended ?? 'the container stopped');
      return;
    }
    const untrack = run.ports.track(task, close);
    pump(ws, conn, {
      onClose: (code, reason) => {
        untrack();
        deps.log.debug({ peer, runId, port, code, reason, ms: Date.now() - opened }, 'tunnel closed');
      },
    });
  });
}

function spliceRaw(socket: net.Socket, head: Buffer, { run, target, conn }: Admitted, task: number, peer: string, deps: TunnelDeps): void {
  // The container may have stopped while the connection was made: refused like any other late tunnel.
  if (run.ports.target(task) !== target) {
    conn.destroy();
    return refuseUpgrade(socket, 410, `run ${run.id} is over (${run.ports.ended ?? 'the container stopped'}): its ports are closed`);
  }
  const opened = Date.now();
  socket.setNoDelay(true);
  // No heartbeat crosses a raw tunnel: TCP's own keep-alive finds a client that went away without a word.
  socket.setKeepAlive(true, 30_000);
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${RAW_TUNNEL_UPGRADE}\r\nConnection: Upgrade\r\n\r\n`);
  if (head.length > 0) conn.write(head);
  const untrack = run.ports.track(task, () => {
    conn.destroy();
    socket.destroy();
  });
  conn.once('close', () => {
    untrack();
    deps.log.debug({ peer, runId: run.id, ms: Date.now() - opened }, 'raw tunnel closed');
  });
  splice(socket, conn);
}
