/**
 * Hosts the endpoint panels: one WebviewPanel per endpoint of the selected agent. Answers `ready` with the
 * header, the latest requests of the journal (`endpoint.requests` with `follow`: each later one is sent as
 * it ends), the instances and cost every STATUS_MS, and the log lines of each instance: an instance is a run
 * of the tenant, so its output is its run's `log` events (`run.attach`), replayed from the start.
 */
import * as vscode from 'vscode';
import type { AgentClient } from '../../agent/client/agentClient';
import type { RequestRecord, RunEvent } from '../../agent/protocol';
import type { EndpointLogLine, FromEndpointPanel, ToEndpointPanel } from '../../webview/protocol';
import type { AgentManager } from '../agents/agentManager';
import { endpointHeader, endpointStatus } from '../endpoints/endpointView';
import type { EndpointList } from '../endpoints/endpointList';
import { errorMessage, showError, type Log } from '../log';
import { webviewHtml, webviewRoots } from './webviewHtml';

export const ENDPOINT_PANEL_VIEW_TYPE = 'bytenite.endpoint';
const STATUS_MS = 2000;
/** Requests sent on `ready`: the table shows the latest. */
const REQUESTS_LIMIT = 500;
const LOG_BATCH_MS = 100;

export class EndpointPanels implements vscode.Disposable {
  private readonly panels = new Map<string, EndpointPanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly agents: AgentManager,
    private readonly endpoints: EndpointList,
    private readonly log: Log,
  ) {}

  open(name: string): void {
    const had = this.panels.get(name);
    if (had) return had.panel.reveal();
    const panel = vscode.window.createWebviewPanel(ENDPOINT_PANEL_VIEW_TYPE, `Endpoint ${name}`, vscode.ViewColumn.Active, {
      enableScripts: true, enableFindWidget: true, retainContextWhenHidden: false, localResourceRoots: webviewRoots(this.extensionUri),
    });
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'bytenite.svg');
    const p = new EndpointPanel(panel, name, this.agents, this.endpoints, this.log);
    this.panels.set(name, p);
    panel.onDidDispose(() => {
      this.panels.delete(name);
      p.dispose();
    });
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'endpoint', panel.title);
  }

  /** What the panel of `name` was last sent, for the extension-host tests. */
  shown(name: string): { requests: RequestRecord[]; logs: EndpointLogLine[]; instances: string[] } | undefined {
    return this.panels.get(name)?.shown();
  }

  dispose(): void {
    for (const p of this.panels.values()) p.panel.dispose();
  }
}

class EndpointPanel {
  private readonly disposables: vscode.Disposable[] = [];
  private client?: AgentClient;
  private timer?: NodeJS.Timeout;
  private logTimer?: NodeJS.Timeout;
  private pendingLogs: EndpointLogLine[] = [];
  private readonly attached = new Map<string, () => void>();
  private readonly requests = new Map<number, RequestRecord>();
  private readonly logs: EndpointLogLine[] = [];
  private instances: string[] = [];
  private readonly onRequest = (r: RequestRecord) => {
    this.requests.set(r.seq, r);
    this.post({ type: 'requests', requests: [r] });
  };

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly name: string,
    private readonly agents: AgentManager,
    private readonly endpoints: EndpointList,
    private readonly log: Log,
  ) {
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: FromEndpointPanel) => void this.onMessage(m)),
      // A new connection (the agent restarted, or came back): follow again on it.
      agents.onDidChangeState(() => {
        const c = agents.selected();
        if (c.state.kind === 'connected' && this.client?.closed) void this.start();
      }),
      endpoints.onDidChange(() => void this.status()),
    );
  }

  shown() {
    return { requests: [...this.requests.values()].sort((a, b) => a.seq - b.seq), logs: [...this.logs], instances: [...this.instances] };
  }

  private post(m: ToEndpointPanel): void {
    void this.panel.webview.postMessage(m);
  }

  private async onMessage(m: FromEndpointPanel): Promise<void> {
    try {
      switch (m.type) {
        case 'ready': return await this.start();
        case 'open': return void (await vscode.commands.executeCommand('bytenite.openEndpoint', this.name));
        case 'undeploy': return void (await vscode.commands.executeCommand('bytenite.undeployEndpoint', this.name));
      }
    } catch (err) {
      showError(this.log, `ByteNite: ${errorMessage(err)}`, err);
    }
  }

  /** (Re)loaded document or new connection: header, the journal with follow, the status, and the instances' logs. */
  private async start(): Promise<void> {
    this.stop();
    const found = await this.endpoints.get(this.name);
    if (!found?.endpoint) {
      this.post({ type: 'status', status: endpointStatus(undefined) });
      return;
    }
    const { client, agent, endpoint } = found;
    this.client = client;
    this.post({ type: 'init', endpoint: endpointHeader(endpoint, client.endpointUrl(endpoint.path), agent) });
    // The instances' runs are replayed from their first event below: a reloaded document gets every line again.
    this.logs.length = 0;
    const past = await client.endpointRequests(this.name, { limit: REQUESTS_LIMIT, onRequest: this.onRequest });
    for (const r of past) this.requests.set(r.seq, r);
    this.post({ type: 'requests', requests: [...this.requests.values()].sort((a, b) => a.seq - b.seq) });
    await this.status();
    this.timer = setInterval(() => void this.status(), STATUS_MS);
  }

  private async status(): Promise<void> {
    const client = this.client;
    if (!client || client.closed) return;
    let list;
    try {
      list = await client.endpoints();
    } catch {
      return; // the next tick asks again
    }
    const e = list.find((x) => x.name === this.name);
    this.post({ type: 'status', status: endpointStatus(e) });
    this.instances = e?.instances.map((i) => i.runId) ?? [];
    for (const runId of this.instances) if (!this.attached.has(runId)) void this.follow(client, runId);
  }

  /** An instance's log lines, from its first: its run's events. */
  private async follow(client: AgentClient, runId: string): Promise<void> {
    this.attached.set(runId, () => {});
    try {
      const off = await client.attach(runId, 0, (_seq, e: RunEvent) => {
        if (e.kind !== 'log' || e.stream === 'build') return;
        const line = { runId, stream: e.stream, time: e.time, data: e.data };
        this.logs.push(line);
        if (this.logs.length > 5000) this.logs.splice(0, this.logs.length - 5000);
        this.pendingLogs.push(line);
        this.logTimer ??= setTimeout(() => {
          this.logTimer = undefined;
          const lines = this.pendingLogs;
          this.pendingLogs = [];
          this.post({ type: 'logs', lines });
        }, LOG_BATCH_MS);
      });
      this.attached.set(runId, off);
    } catch (err) {
      this.log.warn(`endpoint ${this.name}: cannot follow instance ${runId}: ${errorMessage(err)}`);
    }
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.client?.offEndpointRequests(this.name, this.onRequest);
    for (const off of this.attached.values()) off();
    this.attached.clear();
  }

  dispose(): void {
    this.stop();
    clearTimeout(this.logTimer);
    for (const d of this.disposables) d.dispose();
  }
}
