/**
 * The endpoint panel: its address and settings, state, cost, the request table (latest first; follows new
 * requests unless scrolled away from the top, or Follow is off), the instances, and their log lines.
 */
import { h, setAttr, setText } from '../components/dom';
import { formatClock, formatUsd } from '../components/format';
import { vscodeApi } from '../components/vscodeApi';
import type { EndpointLogLine, EndpointStatusView, FromEndpointPanel, RequestRecord, ToEndpointPanel } from '../protocol';
import { mergeRequests, requestRowText } from './requestRows';

/** Log lines kept in the document. */
const MAX_LOG_LINES = 5000;

export class EndpointApp {
  private readonly api = vscodeApi<FromEndpointPanel, unknown>();
  private readonly name = h('span', { id: 'endpoint-name' }, 'Endpoint');
  private readonly state = h('span', { id: 'endpoint-state' }, '');
  private readonly url = h('span', { id: 'endpoint-url', class: 'muted' }, '');
  private readonly facts = h('div', { id: 'endpoint-facts', class: 'facts muted' });
  private readonly cost = h('div', { id: 'endpoint-cost', class: 'facts' });
  private readonly rows = h('tbody', { id: 'request-rows' });
  private readonly count = h('span', { id: 'request-count', class: 'muted num' }, '0 requests');
  private readonly follow = h('vscode-checkbox', { id: 'request-follow', checked: true }, 'Follow');
  private readonly scroller = h('div', { class: 'scroller' });
  private readonly instances = h('ul', { id: 'endpoint-instances', class: 'facts' });
  private readonly logs = h('pre', { id: 'endpoint-logs', 'aria-label': 'Log lines of the instances' });
  private readonly held = new Map<number, RequestRecord>();
  private logLines = 0;

  private get followBox(): { checked: boolean } {
    return this.follow as unknown as { checked: boolean };
  }

  constructor(root: HTMLElement) {
    const button = (id: string, label: string, msg: FromEndpointPanel) => {
      const b = h('vscode-button', { id, secondary: id !== 'btn-endpoint-open' }, label);
      b.addEventListener('click', () => this.api.postMessage(msg));
      return b;
    };
    const head = h('tr', {}, ...['Time', 'Method', 'Path', 'Status', 'Duration', 'Details'].map((t) => h('th', { scope: 'col' }, t)));
    this.scroller.append(h('table', { id: 'requests', 'aria-label': 'Requests, latest first' }, h('thead', {}, head), this.rows));
    root.append(
      h('header', { id: 'endpoint-header' }, this.name, this.state, this.url,
        h('span', { class: 'endpoint-buttons' }, button('btn-endpoint-open', 'Open', { type: 'open' }), button('btn-endpoint-undeploy', 'Undeploy', { type: 'undeploy' }))),
      this.facts, this.cost,
      h('section', { 'aria-label': 'Requests' }, h('div', { class: 'table-tools' }, h('span', { class: 'section-title' }, 'Requests'), this.count, this.follow), this.scroller),
      h('section', { 'aria-label': 'Instances' }, h('div', { class: 'section-title' }, 'Instances'), this.instances),
      h('section', { 'aria-label': 'Logs' }, h('div', { class: 'section-title' }, 'Logs of the instances'), this.logs),
    );
    // Scrolling down the table to read older requests stops following; back at the top follows again.
    this.scroller.addEventListener('scroll', () => (this.followBox.checked = this.scroller.scrollTop < 4));
    window.addEventListener('message', (e: MessageEvent) => this.onMessage(e.data as ToEndpointPanel));
    this.api.postMessage({ type: 'ready' });
  }

  private onMessage(m: ToEndpointPanel): void {
    switch (m?.type) {
      case 'init':
        setText(this.name, `Endpoint ${m.endpoint.name}`);
        setText(this.url, m.endpoint.url);
        this.facts.replaceChildren(h('span', {}, `agent ${m.endpoint.agent}`), h('span', {}, m.endpoint.hardware), h('span', {}, m.endpoint.settings));
        return;
      case 'requests': return this.renderRequests(m.requests);
      case 'status': return this.renderStatus(m.status);
      case 'logs': return this.appendLogs(m.lines);
    }
  }

  private renderRequests(incoming: RequestRecord[]): void {
    const all = mergeRequests(this.held, incoming);
    setText(this.count, `${all.length.toLocaleString('en-US')} request${all.length === 1 ? '' : 's'}`);
    const top = this.scroller.scrollTop;
    this.rows.replaceChildren(...all.map((r) => {
      const t = requestRowText(r);
      return h('tr', { class: t.wake ? 'request-row woke' : 'request-row', 'data-seq': t.seq, 'data-tone': t.tone, 'aria-label': t.label },
        h('td', { class: 'req-time num' }, t.time),
        h('td', { class: 'req-method' }, t.method),
        h('td', { class: 'req-path' }, t.path),
        h('td', { class: 'req-status num' }, t.status),
        h('td', { class: 'req-duration num' }, t.duration),
        h('td', { class: 'req-detail muted' }, t.detail,
          ...(t.wake ? [' ', h('vscode-badge', { class: 'wake', 'data-kind': t.wakeKind! }, t.wake)] : []),
          ...(t.error ? [' ', h('span', { class: 'req-error' }, t.error)] : [])));
    }));
    // Following: the latest (top) row stays in view. Not following: the rows read stay where they were.
    this.scroller.scrollTop = this.followBox.checked ? 0 : top;
  }

  private renderStatus(s: EndpointStatusView): void {
    setText(this.state, s.stateText);
    setAttr(this.state, 'data-state', s.exists ? s.stateText.split(' ')[0] : 'undeployed');
    this.cost.replaceChildren(...[
      `${s.requests.toLocaleString('en-US')} request${s.requests === 1 ? '' : 's'} since the agent started`,
      ...(s.queued ? [`${s.queued} held`] : []),
      ...(s.costToday !== undefined ? [`cost today ${formatUsd(s.costToday)}`, `total ${formatUsd(s.costTotal ?? 0)}`] : []),
      ...(s.idleText ? [s.idleText] : []),
    ].map((t) => h('span', {}, t)));
    this.instances.replaceChildren(...(s.instances.length
      ? s.instances.map((i) => h('li', { class: 'instance', 'data-run-id': i.runId, 'data-state': i.state },
        `${i.runId} · ${i.state}${i.start ? ` · ${i.start} start` : ''} · ${i.inFlight} in flight${i.startedAt ? ` · since ${formatClock(Date.parse(i.startedAt))}` : ''}`))
      : [h('li', { class: 'muted' }, s.exists ? 'None running: the next request starts one.' : 'The endpoint was undeployed.')]));
  }

  private appendLogs(lines: EndpointLogLine[]): void {
    const atEnd = this.logs.scrollTop + this.logs.clientHeight >= this.logs.scrollHeight - 4;
    const frag = document.createDocumentFragment();
    for (const l of lines) {
      frag.append(h('span', { class: `log-line log-${l.stream}` }, h('span', { class: 'log-instance' }, `${l.runId} `), l.data.endsWith('\n') ? l.data : `${l.data}\n`));
    }
    this.logs.append(frag);
    this.logLines += lines.length;
    while (this.logLines > MAX_LOG_LINES && this.logs.firstChild) {
      this.logs.firstChild.remove();
      this.logLines--;
    }
    if (atEnd) this.logs.scrollTop = this.logs.scrollHeight;
  }
}
