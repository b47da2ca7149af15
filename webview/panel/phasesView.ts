/** The phase list: one `li.phase[data-phase]` per phase with its status, time and a few words. */
import { h, setAttr, setText } from '../components/dom';
import { type PhaseRow, phaseTimeText } from './phaseRows';
import { PHASES } from './runModel';

export class PhasesView {
  readonly el: HTMLElement;
  private readonly items = new Map<string, { li: HTMLElement; time: HTMLElement; detail: HTMLElement }>();

  constructor() {
    const list = h('ol', { id: 'phases', class: 'phases', 'aria-label': 'Phases' });
    for (const p of PHASES) {
      const time = h('span', { class: 'phase-time' }, '–');
      const detail = h('span', { class: 'phase-detail muted' });
      const li = h('li', { class: 'phase', 'data-phase': p, 'data-status': 'pending' },
        h('span', { class: 'phase-dot', 'aria-hidden': 'true' }), h('span', { class: 'phase-label' }, p), time, detail);
      this.items.set(p, { li, time, detail });
      list.append(li);
    }
    this.el = h('section', { class: 'card', 'aria-label': 'Phases' }, h('div', { class: 'section-title' }, 'Phases'), list);
  }

  update(rows: PhaseRow[]): void {
    for (const r of rows) {
      const it = this.items.get(r.phase);
      if (!it) continue;
      setAttr(it.li, 'data-status', r.status);
      setAttr(it.li, 'aria-current', r.status === 'active' ? 'step' : null);
      setText(it.li.querySelector('.phase-label')!, r.label);
      setText(it.time, phaseTimeText(r));
      setText(it.detail, r.detail ?? '');
    }
  }
}
