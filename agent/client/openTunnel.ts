/**
 * Opens the WebSocket of one forwarded connection (`/tunnel/RUN/PORT` on the agent, with the connection's
 * token). A refusal rejects with the agent's own reason and its HTTP status, which says whether trying
 * again can help (409: the run is not running yet).
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { MAX_FRAME } from '../protocol/version';
import { TunnelRefused } from '../tunnel/tunnelRefused';

export { TunnelRefused };

export interface TunnelAuth {
  token: string;
  ca?: string | Buffer;
}

const tunnelUrl = (agentUrl: string, runId: string, port: number, task?: number) =>
  `${agentUrl.replace(/\/+$/, '')}/tunnel/${runId}/${port}${task !== undefined ? `?task=${task}` : ''}`;

export function openTunnel(agentUrl: string, auth: TunnelAuth, runId: string, port: number, task?: number): Promise<WebSocket> {
  return openAgentSocket(tunnelUrl(agentUrl, runId, port, task), auth, 'tunnel');
}

/** A refusal before an upgrade, in the agent's own words (its body, bounded) with its HTTP status, given to `done`. */
function readRefusal(res: http.IncomingMessage, what: string, done: (err: TunnelRefused) => void): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (body += c).length > 2000 && res.destroy());
  const end = () => done(new TunnelRefused(res.statusCode ?? 0, body.trim() || `the agent refused the ${what} (HTTP ${res.statusCode})`));
  res.once('end', end);
  res.once('close', end);
}

/**
 * One forwarded connection as plain TCP (capability `raw-tunnel`): an HTTP upgrade to `bytenite-tcp` on
 * `/tunnel/RUN/PORT`, after whose 101 the socket carries the container port's bytes unframed. Refusals are
 * the WebSocket tunnel's, with the same statuses.
 */
export function openRawTunnel(agentUrl: string, auth: TunnelAuth, runId: string, port: number, task?: number): Promise<Duplex> {
  const u = new URL(tunnelUrl(agentUrl, runId, port, task));
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  const opts: https.RequestOptions = {
    host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || (secure ? 443 : 80), path: u.pathname + u.search, agent: false,
    headers: { Authorization: `Bearer ${auth.token}`, Connection: 'Upgrade', Upgrade: 'bytenite-tcp' },
    ...(secure && auth.ca ? { ca: auth.ca } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(opts);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.once('upgrade', (_res, socket, head) => {
      req.setTimeout(0);
      socket.setNoDelay(true);
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('response', (res) => readRefusal(res, 'tunnel', reject));
    req.once('error', (err) => reject(new TunnelRefused(0, `cannot reach the agent: ${err.message}`)));
    req.end();
  });
}

/**
 * A WebSocket of its own to the agent (a tunnel, an exec), authenticated with the token. A refusal before
 * the upgrade rejects with the agent's own words and its HTTP status; no answer rejects with status 0.
 * `early` gets the socket before it opens: a listener attached there sees frames that arrive with the
 * upgrade's answer, which ws emits before the caller's `await` resumes (an exec's first output does).
 */
export function openAgentSocket(url: string, auth: TunnelAuth, what: string, early?: (ws: WebSocket) => void): Promise<WebSocket> {
  const ws = new WebSocket(url, {
    headers: { Authorization: `Bearer ${auth.token}` }, ca: auth.ca, maxPayload: MAX_FRAME, perMessageDeflate: false, handshakeTimeout: 10_000,
  });
  early?.(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    // Rejected before the socket is cut: its 'error' would otherwise say only that it closed.
    ws.once('unexpected-response', (_req, res) => readRefusal(res, what, (err) => {
      reject(err);
      ws.terminate();
    }));
    ws.once('error', (err) => reject(new TunnelRefused(0, `cannot reach the agent: ${err.message}`)));
  });
}
