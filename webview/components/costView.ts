/**
 * Cost: a ticker while the run goes, then the final total with its breakdown (vCPU, memory, GPU, billed
 * duration) and the same run priced at each reference rate of the agent's pricing table.
 */
import { h, setAttr, setText } from './dom';
import { formatDuration, formatUsd } from './format';
import type { CostBreakdown } from '../protocol';

export class CostView {
  readonly el: HTMLElement;
  private readonly total: HTMLElement;
  private readonly note: HTMLElement;
  private readonly breakdown: HTMLElement;
  private readonly reference: HTMLElement;
  private shownFinal: CostBreakdown | undefined;

  constructor() {
    this.total = h('div', { id: 'cost-total', class: 'cost-total', 'aria-label': 'Cost' }, '–');
    this.note = h('div', { id: 'cost-note', class: 'muted' }, 'Starts when the container runs.');
    this.breakdown = h('dl', { id: 'cost-breakdown', class: 'cost-breakdown', hidden: true });
    this.reference = h('div', { id: 'cost-reference', class: 'cost-reference', hidden: true });
    this.el = h('section', { id: 'cost', class: 'card', 'aria-label': 'Cost' },
      h('div', { class: 'section-title' }, 'Cost'), this.total, this.note, this.breakdown, this.reference);
  }

  /** Another run takes the panel: nothing spent yet, and none of the last run's breakdown. */
  clear(): void {
    this.shownFinal = undefined;
    setText(this.total, formatUsd(0));
    setAttr(this.total, 'data-final', null);
    setText(this.note, 'so far');
    this.breakdown.hidden = true;
    this.reference.hidden = true;
  }

  /** While running: the ticker value and the billed time so far. */
  showLive(total: number | undefined, billedMs: number | undefined): void {
    if (total === undefined) return;
    setText(this.total, formatUsd(total));
    setAttr(this.total, 'data-final', null);
    setText(this.note, billedMs !== undefined ? `so far · billed ${formatDuration(billedMs)}` : 'so far');
  }

  showFinal(c: CostBreakdown): void {
    if (this.shownFinal === c) return;
    this.shownFinal = c;
    setText(this.total, formatUsd(c.total));
    setAttr(this.total, 'data-final', 'true');
    setText(this.note, 'final');
    const rows: [string, string][] = [
      ['vCPU', formatUsd(c.vcpu)],
      ['Memory', formatUsd(c.memory)],
      ...(c.gpu > 0 ? [['GPU', formatUsd(c.gpu)] as [string, string]] : []),
      ['Billed duration', formatDuration(c.billedMs)],
    ];
    this.breakdown.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    this.breakdown.hidden = false;
    if (c.reference.length > 0) {
      this.reference.replaceChildren(
        h('div', { class: 'muted' }, 'Same run at reference rates:'),
        h('ul', {}, ...c.reference.map((r) => h('li', { class: 'cost-reference-row' },
          h('span', {}, r.name), ' ',
          // Not sold there at all: no figure to compare. Partly priced: the figure, and what it leaves out.
          ...(r.unpriced === 'GPU machines only'
            ? [h('span', { class: 'muted' }, 'not offered (GPU machines only)')]
            : [h('span', { class: 'num' }, formatUsd(r.total)), ' ',
              h('span', { class: 'muted' }, r.unpriced ? `(${r.unpriced}: GPU not included)` : compare(c.total, r.total))])))),
      );
      this.reference.hidden = false;
    } else {
      this.reference.hidden = true;
    }
  }
}

/** How the reference compares with ours, e.g. `3.2× this run`. */
export function compare(ours: number, theirs: number): string {
  if (ours <= 0 || theirs <= 0) return '';
  const x = theirs / ours;
  return `(${x >= 10 ? x.toFixed(0) : x.toFixed(1)}× this run)`;
}
