/**
 * Hosts the sidebar webview view: the agent and its state, the workspace's Dockerfiles, the schedules, the run history.
 * Sends the whole (small) state on `ready`, on every change and whenever the view becomes visible again.
 */
import * as vscode from 'vscode';
import type { AgentView, DiskPartView, EndpointRowView, FromSidebar, SidebarState, ToSidebar, VolumeView } from '../../webview/protocol';
import type { AgentManager } from '../agents/agentManager';
import type { ConnectionState } from '../agents/agentConnection';
import { LOCAL_AGENT, config } from '../config';
import type { DockerfileIndex } from '../dockerfiles/dockerfileIndex';
import type { HardwareChoices } from '../hardware/hardwareChoices';
import { formatHardware } from '../hardware/pricing';
import type { RunStore } from '../runs/runStore';
import { webviewHtml, webviewRoots } from './webviewHtml';
import type { ScheduleList } from '../schedules/scheduleList';
import type { EndpointList } from '../endpoints/endpointList';
import { endpointRow } from '../endpoints/endpointView';

export const SIDEBAR_VIEW_ID = 'bytenite.sidebar';

/** A schedule row's buttons and the commands they run. */
const SCHEDULE_COMMANDS = {
  run: 'bytenite.runSchedule', pause: 'bytenite.pauseSchedule', resume: 'bytenite.resumeSchedule', remove: 'bytenite.removeSchedule',
} as const;

/** How old the disk figures may be before the sidebar asks the agent again. */
const DISK_MS = 10_000;
/** How often the endpoints are asked for while the view shows (their state and counts move without us). */
const ENDPOINTS_MS = 3000;

export class SidebarProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view?: vscode.WebviewView;
  private readonly disposables: vscode.Disposable[] = [];
  private scheduled?: NodeJS.Timeout;
  private endpointTimer?: NodeJS.Timeout;
  /** The last endpoint rows, reused for a second: run events redraw the view often, the rows need not be asked each time. */
  private endpointCache?: { agent: string; at: number; rows: EndpointRowView[] | undefined };
  /** The selected agent's disk use, asked at most every DISK_MS (a hardware request) while the view shows. */
  private disk?: { agent: string; at: number; parts: DiskPartView[]; volumes?: VolumeView[] };

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly agents: AgentManager,
    private readonly dockerfiles: DockerfileIndex,
    private readonly choices: HardwareChoices,
    private readonly store: RunStore,
    private readonly endpoints: EndpointList,
    private readonly schedules: ScheduleList,
  ) {
    const refresh = () => this.refresh();
    this.disposables.push(
      schedules.onDidChange(refresh),
      endpoints.onDidChange(() => {
        this.endpointCache = undefined;
        refresh();
      }),
      agents.onDidChangeState(refresh), agents.onDidChangeSelected(refresh), dockerfiles.onDidChange(refresh),
      choices.onDidChange(refresh), store.onDidChange(refresh), vscode.workspace.onDidGrantWorkspaceTrust(refresh),
    );
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = { enableScripts: true, localResourceRoots: webviewRoots(this.extensionUri) };
    view.webview.html = webviewHtml(view.webview, this.extensionUri, 'sidebar', 'ByteNite');
    this.disposables.push(
      view.webview.onDidReceiveMessage((m: FromSidebar) => this.onMessage(m)),
      view.onDidChangeVisibility(() => {
        if (view.visible) this.refresh();
        this.pollEndpoints();
        this.schedules.poll(view.visible);
      }),
    );
    this.pollEndpoints();
    this.schedules.poll(view.visible);
    view.onDidDispose(() => {
      this.view = undefined;
      this.pollEndpoints();
      this.schedules.poll(false);
    });
  }

  private onMessage(m: FromSidebar): void {
    switch (m.type) {
      case 'ready': return void this.send();
      case 'runDockerfile': return void vscode.commands.executeCommand('bytenite.runDockerfile', vscode.Uri.parse(m.id));
      case 'openRun': return void vscode.commands.executeCommand('bytenite.openRun', m.runId);
      case 'selectAgent': return void vscode.commands.executeCommand('bytenite.selectAgent');
      case 'startLocalAgent': return void vscode.commands.executeCommand('bytenite.startLocalAgent');
      case 'scheduleAction': return void vscode.commands.executeCommand(SCHEDULE_COMMANDS[m.action], m.name);
      case 'removeVolume': return void vscode.commands.executeCommand('bytenite.removeVolume', m.name);
      case 'openEndpoint': return void vscode.commands.executeCommand('bytenite.openEndpoint', m.name);
      case 'endpointLogs': return void vscode.commands.executeCommand('bytenite.endpointLogs', m.name);
      case 'undeployEndpoint': return void vscode.commands.executeCommand('bytenite.undeployEndpoint', m.name);
    }
  }

  /** Asks for the endpoints every ENDPOINTS_MS while the view shows, not at all while it is hidden. */
  private pollEndpoints(): void {
    const on = Boolean(this.view?.visible);
    if (on && !this.endpointTimer) this.endpointTimer = setInterval(() => this.refresh(), ENDPOINTS_MS);
    if (!on && this.endpointTimer) {
      clearInterval(this.endpointTimer);
      this.endpointTimer = undefined;
    }
  }

  /** Coalesces bursts of changes into one message. */
  refresh(): void {
    if (!this.view?.visible || this.scheduled) return;
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      void this.send();
    }, 100);
  }

  private async send(): Promise<void> {
    if (!this.view) return;
    const msg: ToSidebar = { type: 'state', state: await this.state() };
    void this.view.webview.postMessage(msg);
  }

  /** Asks the agent for its disk use and volumes at the next redraw (a volume was removed). */
  forgetDisk(): void {
    this.disk = undefined;
    this.refresh();
  }

  async state(): Promise<SidebarState> {
    const files = await this.dockerfiles.list();
    const agent = await this.agentView();
    const endpoints = agent.state === 'connected' ? await this.endpointRows() : undefined;
    const schedules = agent.state === 'connected' ? await this.schedules.rows() : undefined;
    return {
      agent,
      ...(endpoints ? { endpoints } : {}),
      ...(schedules ? { schedules } : {}),
      dockerfiles: files.map((uri) => {
        const chosen = this.choices.chosen(uri);
        return { id: uri.toString(), path: vscode.workspace.asRelativePath(uri, false), hardware: chosen ? formatHardware(chosen) : undefined };
      }),
      runs: this.store.rows(),
      trusted: vscode.workspace.isTrusted,
    };
  }

  private async endpointRows(): Promise<EndpointRowView[] | undefined> {
    const agent = this.agents.selectedName();
    if (this.endpointCache?.agent === agent && Date.now() - this.endpointCache.at < 1000) return this.endpointCache.rows;
    try {
      const listed = await this.endpoints.list();
      const rows = listed?.endpoints.map((e) => endpointRow(e, listed.client.endpointUrl(e.path)));
      this.endpointCache = { agent, at: Date.now(), rows };
      return rows;
    } catch {
      return undefined; // shown again at the next refresh
    }
  }

  private async agentView(): Promise<AgentView> {
    const name = this.agents.selectedName();
    const conn = this.agents.selected();
    const local = name === LOCAL_AGENT;
    const url = local ? undefined : config.remoteAgents().find((a) => a.name === name)?.url;
    const state = viewState(conn.state, local);
    const disk = state.state === 'connected' ? await this.diskOf(name, conn) : undefined;
    return { name, kind: local ? 'local' : 'remote', url, ...state, disk, ...(disk && this.disk?.volumes ? { volumes: this.disk.volumes } : {}) };
  }

  private async diskOf(name: string, conn: ReturnType<AgentManager['selected']>): Promise<DiskPartView[] | undefined> {
    if (this.disk?.agent === name && Date.now() - this.disk.at < DISK_MS) return this.disk.parts;
    try {
      const client = await conn.get(2000);
      const catalog = await client.hardware();
      // An agent that has volumes lists the tenant's with their sizes (asked as often as the disk).
      const volumes = client.hello.capabilities.includes('volumes')
        ? (await client.volumes()).volumes.map((v): VolumeView => ({
          name: v.name, sizeBytes: v.sizeBytes, monthlyCost: v.monthlyCost, lastUsedAt: v.lastUsedAt, inUse: v.inUse.map((u) => u.runId),
        }))
        : undefined;
      this.disk = { agent: name, at: Date.now(), parts: catalog.storage ?? [], volumes };
      return this.disk.parts;
    } catch {
      return undefined; // shown again at the next refresh
    }
  }

  dispose(): void {
    clearTimeout(this.scheduled);
    clearInterval(this.endpointTimer);
    for (const d of this.disposables) d.dispose();
  }
}

function viewState(s: ConnectionState, local: boolean): Pick<AgentView, 'state' | 'message'> {
  switch (s.kind) {
    case 'connected': return { state: 'connected' };
    case 'connecting': return { state: 'connecting' };
    case 'idle': return { state: 'disconnected', message: 'Not connected yet' };
    case 'retrying': return { state: 'connecting', message: `${s.reason}; retrying` };
    case 'failed':
      return { state: local && /stopped/.test(s.reason) ? 'stopped' : 'error', message: s.reason };
  }
}
