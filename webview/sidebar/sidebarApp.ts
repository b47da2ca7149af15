/**
 * The sidebar view: the agent and its state (its volumes with a remove button each), the workspace's
 * Dockerfiles with a Run button each, the agent's schedules (schedulesView.ts), cost totals, and the run history (newest first), each row opening its run panel. It redraws from the whole
 * state the host sends (small), and saves it so a re-shown view paints at once.
 */
import { h, setAttr, setText } from '../components/dom';
import { formatBytes, formatUsd } from '../components/format';
import { vscodeApi } from '../components/vscodeApi';
import type { FromSidebar, SidebarState, ToSidebar } from '../protocol';
import { costTotals, endpointRowText, runRowText, sortRuns, volumeRowText } from './sidebarModel';
import { SchedulesView } from './schedulesView';

const AGENT_STATE_TEXT: Record<NonNullable<SidebarState['agent']>['state'], string> = {
  connected: 'connected', connecting: 'connecting…', disconnected: 'disconnected', stopped: 'stopped', error: 'error',
};

export class SidebarApp {
  private readonly api = vscodeApi<FromSidebar, SidebarState>();
  private readonly agent: HTMLElement;
  private readonly dockerfiles: HTMLElement;
  private readonly runs: HTMLElement;
  private readonly endpointsSection: HTMLElement;
  private readonly endpoints: HTMLElement;
  private readonly today: HTMLElement;
  private readonly overall: HTMLElement;
  private state: SidebarState | undefined;
  private readonly schedules = new SchedulesView();

  constructor(root: HTMLElement) {
    this.agent = h('section', { id: 'agent', class: 'agent', 'aria-label': 'Agent' });
    this.dockerfiles = h('ul', { id: 'dockerfiles', class: 'list', 'aria-label': 'Dockerfiles' });
    this.runs = h('ul', { id: 'runs', class: 'list', 'aria-label': 'Runs, newest first' });
    this.endpoints = h('ul', { id: 'endpoints', class: 'list', 'aria-label': 'Endpoints on the agent' });
    this.endpointsSection = h('section', { id: 'endpoints-section', 'aria-label': 'Endpoints', hidden: true },
      h('div', { class: 'section-title' }, 'Endpoints'), this.endpoints);
    this.today = h('span', { id: 'cost-today', class: 'num' }, '$0.00');
    this.overall = h('span', { id: 'cost-overall', class: 'num' }, '$0.00');
    root.append(
      this.agent,
      h('section', { 'aria-label': 'Dockerfiles' }, h('div', { class: 'section-title' }, 'Dockerfiles'), this.dockerfiles),
      this.endpointsSection,
      this.schedules.section,
      h('section', { id: 'cost-totals', class: 'totals', 'aria-label': 'Cost totals' },
        h('span', {}, 'Today ', this.today), h('span', {}, 'Overall ', this.overall)),
      h('section', { 'aria-label': 'Runs' }, h('div', { class: 'section-title' }, 'Runs'), this.runs),
    );
    // One listener per list: rows are redrawn often, their buttons carry what they act on in data-*.
    root.addEventListener('click', (e) => this.onClick(e));
    window.addEventListener('message', (e: MessageEvent) => this.onMessage(e.data as ToSidebar));
    const saved = this.api.getState();
    if (saved && Array.isArray(saved.runs)) this.render(saved);
    else this.render({ agent: null, dockerfiles: [], runs: [], trusted: true });
    // The day changes under an open view: recount "today" now and then.
    setInterval(() => { if (this.state) this.renderTotals(this.state); }, 60_000);
    this.api.postMessage({ type: 'ready' });
  }

  private onMessage(m: ToSidebar): void {
    if (m?.type === 'state' && m.state) {
      this.render(m.state);
      this.api.setState(m.state);
    }
  }

  private onClick(e: Event): void {
    const el = (e.target as Element).closest<HTMLElement>('[data-action]');
    if (!el || el.hasAttribute('disabled')) return;
    const action = el.dataset.action;
    if (action === 'run' && el.dataset.id) this.api.postMessage({ type: 'runDockerfile', id: el.dataset.id });
    else if (action === 'open' && el.dataset.runId) this.api.postMessage({ type: 'openRun', runId: el.dataset.runId });
    else if (action === 'select-agent') this.api.postMessage({ type: 'selectAgent' });
    else if (action === 'start-local') this.api.postMessage({ type: 'startLocalAgent' });
    else if (action === 'schedule' && el.dataset.schedule) {
      this.api.postMessage({ type: 'scheduleAction', action: el.dataset.scheduleAction as 'run' | 'pause' | 'resume' | 'remove', name: el.dataset.schedule });
    } else if (action === 'remove-volume' && el.dataset.volume) this.api.postMessage({ type: 'removeVolume', name: el.dataset.volume });
    else if (el.dataset.endpoint) {
      const name = el.dataset.endpoint;
      if (action === 'endpoint-open') this.api.postMessage({ type: 'openEndpoint', name });
      else if (action === 'endpoint-logs') this.api.postMessage({ type: 'endpointLogs', name });
      else if (action === 'endpoint-undeploy') this.api.postMessage({ type: 'undeployEndpoint', name });
    }
  }

  private render(s: SidebarState): void {
    this.state = s;
    this.renderAgent(s);
    this.renderDockerfiles(s);
    this.schedules.render(s.schedules, s.trusted);
    this.renderRuns(s);
    this.renderEndpoints(s);
    this.renderTotals(s);
  }

  /** Hidden when the agent serves no endpoints; a row each with its state, requests, cost today and three buttons. */
  private renderEndpoints(s: SidebarState): void {
    this.endpointsSection.hidden = s.endpoints === undefined;
    if (!s.endpoints) return;
    if (s.endpoints.length === 0) {
      this.endpoints.replaceChildren(h('li', { class: 'empty muted' }, 'No endpoints. Deploy a Dockerfile with ByteNite: Deploy as Endpoint.'));
      return;
    }
    this.endpoints.replaceChildren(...s.endpoints.map((e) => {
      const t = endpointRowText(e);
      const button = (action: string, label: string, title: string) => h('vscode-button', {
        class: `endpoint-${action}`, 'data-action': `endpoint-${action}`, 'data-endpoint': e.name, secondary: true, title, 'aria-label': `${label} ${e.name}`,
      }, label);
      return h('li', { class: 'endpoint-row', 'data-endpoint': e.name, 'data-state': e.state, title: t.label, 'aria-label': t.label },
        h('div', { class: 'endpoint-line' },
          h('span', { class: 'run-dot', 'aria-hidden': 'true' }),
          h('span', { class: 'endpoint-name' }, e.name),
          h('span', { class: 'endpoint-state' }, e.stateText),
          h('span', { class: 'endpoint-detail num muted' }, t.detail)),
        h('div', { class: 'endpoint-actions' },
          button('open', 'Open', `Open ${e.url} in the browser${e.public ? '' : ' (through a local forward that adds the agent token)'}`),
          button('logs', 'Logs', 'Show its requests, instances and logs'),
          button('undeploy', 'Undeploy', 'Remove the endpoint (asks first)')));
    }));
  }

  private renderAgent(s: SidebarState): void {
    const a = s.agent;
    setAttr(this.agent, 'data-state', a?.state ?? 'none');
    const label = a ? `Agent ${a.name}, ${AGENT_STATE_TEXT[a.state]}. Select another agent.` : 'No agent. Select an agent.';
    this.agent.replaceChildren(
      h('div', { class: 'section-title' }, 'Agent'),
      h('button', { class: 'agent-row', 'data-action': 'select-agent', 'aria-label': label, title: 'Select agent' },
        h('span', { class: 'dot', 'aria-hidden': 'true' }),
        h('span', { class: 'agent-name' }, a ? a.name : 'none'),
        h('span', { class: 'agent-state muted' }, a ? AGENT_STATE_TEXT[a.state] : 'select one'),
        ...(a?.kind === 'remote' && a.url ? [h('span', { class: 'agent-url muted' }, a.url)] : [])),
      ...(a?.message ? [h('div', { class: 'agent-message' }, a.message)] : []),
      ...(a?.disk?.length ? [h('ul', { class: 'agent-disk', 'aria-label': 'Disk used by the agent' }, ...a.disk.map((d) => {
        const full = d.budgetBytes > 0 && d.usedBytes >= 0.9 * d.budgetBytes;
        return h('li', { class: full ? 'disk-part near-full' : 'disk-part', title: `${d.note ? `${d.note}. ` : ''}${d.flag ? `Budget: bytenite agent ${d.flag}` : ''}` },
          h('span', { class: 'disk-name' }, d.name),
          h('span', { class: 'disk-use muted' }, `${formatBytes(d.usedBytes)} of ${formatBytes(d.budgetBytes)}`));
      }))] : []),
      ...(a?.volumes?.length ? [h('div', { class: 'section-title' }, 'Volumes'), h('ul', { class: 'agent-volumes', 'aria-label': 'Volumes on the agent' }, ...a.volumes.map((v) => {
        const t = volumeRowText(v);
        return h('li', { class: 'disk-part volume-row', 'data-volume': v.name, title: t.label, 'aria-label': t.label },
          h('span', { class: 'disk-name' }, v.name),
          h('span', { class: 'disk-use muted' }, `${t.size} · ${t.detail}`),
          h('button', {
            class: 'volume-remove', 'data-action': 'remove-volume', 'data-volume': v.name, 'aria-label': `Remove volume ${v.name}`,
            title: `Remove volume ${v.name} and its data`, disabled: v.inUse.length > 0,
          }, '×'));
      }))] : []),
      ...(a?.kind === 'local' && (a.state === 'stopped' || a.state === 'error')
        ? [h('vscode-button', { 'data-action': 'start-local', secondary: true }, 'Start Local Agent')] : []),
    );
  }

  private renderDockerfiles(s: SidebarState): void {
    if (s.dockerfiles.length === 0) {
      this.dockerfiles.replaceChildren(h('li', { class: 'empty muted' }, 'No Dockerfiles in this workspace.'));
      return;
    }
    this.dockerfiles.replaceChildren(...s.dockerfiles.map((d) => h('li', { class: 'dockerfile-row', 'data-id': d.id },
      h('span', { class: 'dockerfile-path', title: d.path }, d.path),
      ...(d.hardware ? [h('span', { class: 'dockerfile-hw muted' }, d.hardware)] : []),
      h('vscode-button', {
        class: 'run-dockerfile', 'data-action': 'run', 'data-id': d.id, 'aria-label': `Run ${d.path}`,
        disabled: !s.trusted, title: s.trusted ? `Run ${d.path} on ByteNite` : 'Runs are disabled in an untrusted workspace',
      }, 'Run'))));
  }

  private renderRuns(s: SidebarState): void {
    const runs = sortRuns(s.runs);
    if (runs.length === 0) {
      this.runs.replaceChildren(h('li', { class: 'empty muted' }, 'No runs yet.'));
      return;
    }
    this.runs.replaceChildren(...runs.map((r) => {
      const t = runRowText(r);
      // The row's right-click menu (package.json `webview/context`): Open Shell while the run runs. VS Code
      // passes this object to the command and offers its fields to the menu's `when`.
      const menu = JSON.stringify({ webviewSection: 'run', runId: r.runId, runState: r.state, preventDefaultContextMenuItems: true });
      return h('li', { 'data-vscode-context': menu },
        h('button', { class: 'run-row', 'data-action': 'open', 'data-run-id': r.runId, 'data-state': r.state, 'data-tone': t.tone, 'aria-label': `Open run: ${t.label}`, title: t.label },
          h('span', { class: 'run-dot', 'aria-hidden': 'true' }),
          h('span', { class: 'run-name' }, r.name),
          h('span', { class: 'run-status' }, t.status),
          ...(r.start ? [h('vscode-badge', { class: 'run-start', 'data-kind': r.start }, r.start)] : []),
          h('span', { class: 'run-duration num muted' }, t.duration),
          h('span', { class: 'run-cost num' }, t.cost)));
    }));
  }

  private renderTotals(s: SidebarState): void {
    const { today, overall } = costTotals(s.runs, new Date());
    setText(this.today, formatUsd(today));
    setText(this.overall, formatUsd(overall));
  }
}
