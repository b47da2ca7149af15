/**
 * Opens the WebSocket of one `exec` (`/exec/RUN?cmd=…` on the agent, with the connection's token); see
 * agent/interactive/execServer.ts for what travels on it. A refusal rejects with the agent's reason and
 * its HTTP status.
 */
import type WebSocket from 'ws';
import { openAgentSocket, type TunnelAuth } from './openTunnel';

export interface ExecOptions {
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  cols?: number;
  rows?: number;
  task?: number;
}

/** `early`: see openAgentSocket; the command's first output can come with the upgrade's answer. */
export function openExec(agentUrl: string, auth: TunnelAuth, runId: string, o: ExecOptions, early?: (ws: WebSocket) => void): Promise<WebSocket> {
  const q = new URLSearchParams({ cmd: Buffer.from(JSON.stringify(o.cmd)).toString('base64url') });
  if (o.tty) q.set('tty', '1');
  if (o.stdin) q.set('stdin', '1');
  if (o.cols && o.rows) {
    q.set('cols', String(o.cols));
    q.set('rows', String(o.rows));
  }
  if (o.task !== undefined) q.set('task', String(o.task));
  return openAgentSocket(`${agentUrl.replace(/\/+$/, '')}/exec/${runId}?${q}`, auth, 'exec', early);
}
