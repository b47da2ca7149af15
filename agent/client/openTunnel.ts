/**
 * Opens the WebSocket of one forwarded connection (`/tunnel/RUN/PORT` on the agent, with the connection's
 * token). A refusal rejects with the agent's own reason and its HTTP status, which says whether trying
 * again can help (409: the run is not running yet).
 */
import WebSocket from 'ws';
import { MAX_FRAME } from '../protocol';
import { TunnelRefused } from '../tunnel/tunnelRefused';

export { TunnelRefused };

export interface TunnelAuth {
  token: string;
  ca?: string | Buffer;
}

export function openTunnel(agentUrl: string, auth: TunnelAuth, runId: string, port: number, task?: number): Promise<WebSocket> {
  return openAgentSocket(`${agentUrl.replace(/\/+$/, '')}/tunnel/${runId}/${port}${task !== undefined ? `?task=${task}` : ''}`, auth, 'tunnel');
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
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c).length > 2000 && res.destroy());
      const done = () => {
        reject(new TunnelRefused(res.statusCode ?? 0, body.trim() || `the agent refused the ${what} (HTTP ${res.statusCode})`));
        ws.terminate();
      };
      res.once('end', done);
      res.once('close', done);
    });
    ws.once('error', (err) => reject(new TunnelRefused(0, `cannot reach the agent: ${err.message}`)));
  });
}
