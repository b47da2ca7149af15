/**
 * Opens the WebSocket of one `exec` (`/exec/RUN?cmd=…` on the agent, with the connection's token); see
 * agent/interactive/execServer.ts for what travels on it. A refusal rejects with the agent's reason and
 * its HTTP status.
 */
import WebSocket from 'ws';
import { MAX_FRAME } from '../protocol';
import { TunnelRefused } from '../tunnel/tunnelRefused';
import type { TunnelAuth } from './openTunnel';

export interface ExecOptions {
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  cols?: number;
  rows?: number;
  task?: number;
}

export function openExec(agentUrl: string, auth: TunnelAuth, runId: string, o: ExecOptions): Promise<WebSocket> {
  const q = new URLSearchParams({ cmd: Buffer.from(JSON.stringify(o.cmd)).toString('base64url') });
  if (o.tty) q.set('tty', '1');
  if (o.stdin) q.set('stdin', '1');
  if (o.cols && o.rows) {
    q.set('cols', String(o.cols));
    q.set('rows', String(o.rows));
  }
  if (o.task !== undefined) q.set('task', String(o.task));
  const ws = new WebSocket(`${agentUrl.replace(/\/+$/, '')}/exec/${runId}?${q}`, {
    headers: { Authorization: `Bearer ${auth.token}` }, ca: auth.ca, maxPayload: MAX_FRAME, perMessageDeflate: false, handshakeTimeout: 10_000,
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c).length > 2000 && res.destroy());
      const done = () => {
        reject(new TunnelRefused(res.statusCode ?? 0, body.trim() || `the agent refused the exec (HTTP ${res.statusCode})`));
        ws.terminate();
      };
      res.once('end', done);
      res.once('close', done);
    });
    ws.once('error', (err) => reject(new TunnelRefused(0, `cannot reach the agent: ${err.message}`)));
  });
}
