/** The agent `bytenite run` starts inside its own process when no --agent is given. */
import type { Duplex } from 'node:stream';
import { DEFAULT_TENANT, generateToken } from '../auth/tokens';
import { dialRun } from '../tunnel/localTunnel';
import { startAgent } from '../server';
import { createLogger } from '../log';

export interface EmbeddedAgent {
  url: string;
  token: string;
  /** A connection to a run's container port from this process, without a WebSocket (see agent/tunnel/localTunnel.ts). */
  dial(runId: string, port: number, task?: number): Promise<Duplex>;
  close(): Promise<void>;
}

/** Listens on a free loopback port with a fresh token, so only this process can use it. */
export async function startEmbeddedAgent(dataDir: string): Promise<EmbeddedAgent> {
  const token = generateToken();
  const agent = await startAgent({
    host: '127.0.0.1', port: 0, token, dataDir,
    // It ends with its one run: a container started ahead of time would only be made to be removed.
    hotPool: 0,
    // Nor does it serve endpoints: it would stop them with its command.
    endpoints: false,
    // The embedded agent speaks up only for problems: the user is watching their run, not the agent.
    log: createLogger(process.env.BYTENITE_LOG_LEVEL ?? 'warn'),
  });
  return {
    url: agent.url, token, close: () => agent.close(),
    // The token's tenant: the embedded agent has the one, and its runs are this process's.
    dial: (runId, port, task) => dialRun(agent.runs, DEFAULT_TENANT, runId, port, task),
  };
}
