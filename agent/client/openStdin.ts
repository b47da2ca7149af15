/**
 * Opens the stdin WebSocket of an interactive run (`/stdin/RUN` on the agent, with the connection's token);
 * see agent/interactive/stdinServer.ts for what travels on it. A refusal rejects with the agent's reason and
 * its HTTP status (409: not running yet).
 */
import type WebSocket from 'ws';
import { openAgentSocket, type TunnelAuth } from './openTunnel';

export function openStdin(agentUrl: string, auth: TunnelAuth, runId: string, size?: { cols?: number; rows?: number }): Promise<WebSocket> {
  const q = size?.cols && size.rows ? `?cols=${size.cols}&rows=${size.rows}` : '';
  return openAgentSocket(`${agentUrl.replace(/\/+$/, '')}/stdin/${runId}${q}`, auth, 'stdin');
}
