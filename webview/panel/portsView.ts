/** The run's forwarded ports: where each is reached on this machine, its state, and Open once it accepts. */
import { h, setAttr, setText } from '../components/dom';
import type { PortView } from '../protocol';

const STATE: Record<PortView['state'], string> = { waiting: 'waiting for the container', ready: 'ready', closed: 'closed (the run ended)' };

export class PortsView {
  readonly el = h('div', { id: 'ports', class: 'ports', role: 'list', 'aria-label': 'Forwarded ports', hidden: true });
  private readonly rows = new Map<number, { row: HTMLElement; text: HTMLElement; open: HTMLElement }>();

  constructor(private readonly onOpen: (containerPort: number) => void) {}

  update(ports: PortView[]): void {
    this.el.hidden = ports.length === 0;
    for (const p of ports) {
      let r = this.rows.get(p.containerPort);
      if (!r) {
        const text = h('span', { class: 'port-text' });
        const open = h('vscode-button', { class: 'port-open', secondary: true, title: 'Open in the browser' }, 'Open');
        open.addEventListener('click', () => { if (!open.hasAttribute('disabled')) this.onOpen(p.containerPort); });
        const row = h('div', { class: 'port-row', role: 'listitem', 'data-port': p.containerPort }, text, open);
        this.el.append(row);
        r = { row, text, open };
        this.rows.set(p.containerPort, r);
      }
      const ready = p.state === 'ready' && p.readyMs !== undefined ? `ready ${p.readyMs} ms after start` : STATE[p.state];
      setText(r.text, `${p.url} → port ${p.containerPort} · ${ready}`);
      setAttr(r.row, 'data-state', p.state);
      setAttr(r.open, 'disabled', p.state === 'ready' ? null : '');
    }
  }
}
