/**
 * The selected agent's endpoints, for the sidebar and the panels: listed through the shared client, with a
 * change event fired after a deploy or an undeploy so views ask again at once. Open goes to the endpoint's
 * own address when it is public, and otherwise through a local forward that adds the token
 * (agent/client/endpointProxy.ts): a browser cannot send the header.
 */
import * as vscode from 'vscode';
import type { AgentClient } from '../../agent/client/agentClient';
import type { EndpointProxy } from '../../agent/client/endpointProxy';
import type { EndpointSummary } from '../../agent/protocol';
import type { AgentManager } from '../agents/agentManager';
import type { Log } from '../log';

export interface ListedEndpoints {
  client: AgentClient;
  agent: string;
  endpoints: EndpointSummary[];
}

export class EndpointList implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires after this window deployed or undeployed an endpoint. */
  readonly onDidChange = this.changed.event;
  private readonly proxies = new Map<string, { client: AgentClient; proxy: EndpointProxy }>();

  constructor(private readonly agents: AgentManager, private readonly log: Log) {}

  /** The endpoints of the selected agent; undefined when it serves none (or is not connected within `timeoutMs`). */
  async list(timeoutMs = 2000): Promise<ListedEndpoints | undefined> {
    const conn = this.agents.selected();
    let client: AgentClient;
    try {
      client = await conn.get(timeoutMs);
    } catch {
      return undefined;
    }
    if (!client.hello.capabilities.includes('endpoints')) return undefined;
    return { client, agent: conn.name, endpoints: await client.endpoints() };
  }

  async get(name: string): Promise<{ client: AgentClient; agent: string; endpoint?: EndpointSummary } | undefined> {
    const l = await this.list(15_000);
    return l && { client: l.client, agent: l.agent, endpoint: l.endpoints.find((e) => e.name === name) };
  }

  fireChanged(): void {
    this.changed.fire();
  }

  /** Where a browser reaches the endpoint's `/`: its own URL when public, else a local forward with the token. */
  async browserUrl(client: AgentClient, e: EndpointSummary): Promise<string> {
    if (e.settings.public) return client.endpointUrl(e.path);
    const key = `${client.url} ${e.name}`;
    const had = this.proxies.get(key);
    if (had?.client === client) return `${had.proxy.url}/`;
    // A new connection (the local agent restarted with a new token): a new forward, on the same port if it is free.
    const oldPort = had ? Number(new URL(had.proxy.url).port) : undefined;
    await had?.proxy.close();
    const proxy = await client.proxyEndpoint(e.name, oldPort).catch(() => client.proxyEndpoint(e.name));
    this.proxies.set(key, { client, proxy });
    this.log.info(`endpoint ${e.name}: forwarded at ${proxy.url} (with the agent token) to ${client.endpointUrl(e.path)}`);
    return `${proxy.url}/`;
  }

  /** Closes the local forward of an endpoint that went away. */
  async forget(client: AgentClient, name: string): Promise<void> {
    const key = `${client.url} ${name}`;
    await this.proxies.get(key)?.proxy.close();
    this.proxies.delete(key);
  }

  dispose(): void {
    this.changed.dispose();
    for (const p of this.proxies.values()) void p.proxy.close();
    this.proxies.clear();
  }
}
