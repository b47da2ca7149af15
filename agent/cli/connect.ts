/**
 * How the CLI reaches an agent: a remote one named by --agent (token from --token-file or
 * $BYTENITE_TOKEN), or, by default, an agent embedded in this process on the local Docker Engine, reached
 * over a real loopback WebSocket so that both paths run the same protocol code.
 */
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { AgentClient } from '../client/agentClient';
import { readTokenFile } from '../auth/tokens';
import { AGENT_VERSION } from '../protocol/version';
import { loadAgentSide } from './loadAgentSide';
import { defaultDataDir } from './paths';

export interface ConnectFlags {
  agent?: string;
  'token-file'?: string;
  /** CA certificate(s) (PEM) that sign a `wss://` agent's certificate, for self-signed set-ups. */
  'ca-file'?: string;
  'data-dir'?: string;
}

export interface Connection {
  client: AgentClient;
  embedded: boolean;
  /**
   * A plain byte stream to a run's port, skipping the WebSocket tunnel: the embedded agent's own, in this
   * process; a standalone agent's raw TCP tunnel when it offers one (null when it does not).
   */
  dial?(runId: string, port: number, task?: number): Promise<Duplex | null>;
  /** The connection if it is still open, else a new one to the same agent (a download resumes on it). */
  current(): Promise<AgentClient>;
  close(): Promise<void>;
}

/** Keeps one open client to `url`: the first, or a new one once the previous has closed. */
function reconnecting(first: AgentClient, open: () => Promise<AgentClient>): Pick<Connection, 'current'> & { closeAll(): void } {
  let live = first;
  let opening: Promise<AgentClient> | undefined;
  const all = [first];
  return {
    current() {
      if (!live.closed) return Promise.resolve(live);
      opening ??= open().then((c) => {
        all.push(c);
        live = c;
        return c;
      }).finally(() => { opening = undefined; });
      return opening;
    },
    closeAll() {
      for (const c of all) if (!c.closed) c.close();
    },
  };
}

export async function connect(flags: ConnectFlags): Promise<Connection> {
  const clientName = `bytenite-cli/${AGENT_VERSION}`;
  if (flags.agent) {
    const token = flags['token-file'] ? await readTokenFile(flags['token-file']) : process.env.BYTENITE_TOKEN;
    if (!token) throw new Error('--agent needs a token: pass --token-file FILE or set BYTENITE_TOKEN');
    const ca = flags['ca-file'] ? await readFile(flags['ca-file']) : undefined;
    const url = flags.agent;
    const client = await AgentClient.connect(url, { token, ca, clientName });
    const r = reconnecting(client, () => AgentClient.connect(url, { token, ca, clientName }));
    // The raw tunnel needs only the agent's address and token, so it goes on across a reconnect of `client`.
    return { client, embedded: false, current: r.current, dial: (runId, port, task) => client.dialTunnel(runId, port, task), close: async () => r.closeAll() };
  }
  const { startEmbeddedAgent } = await loadAgentSide();
  const agent = await startEmbeddedAgent(path.resolve(flags['data-dir'] ?? defaultDataDir()));
  try {
    const client = await AgentClient.connect(agent.url, { token: agent.token, clientName });
    const r = reconnecting(client, () => AgentClient.connect(agent.url, { token: agent.token, clientName }));
    return {
      client, embedded: true, current: r.current, dial: agent.dial,
      async close() {
        r.closeAll();
        await agent.close();
      },
    };
  } catch (err) {
    await agent.close();
    throw err;
  }
}
