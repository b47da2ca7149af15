/**
 * Run on Save in the run panel: the Watch toggle (a button that shows its state), and the earlier runs of
 * the watch folded above the current one, each with why it ended and, when this document showed it, the end
 * of its log. Those logs live in this document only: after a reload the folded runs keep their line, not their log.
 */
import { h, setAttr, setText } from '../components/dom';
import { formatDuration, formatUsd } from '../components/format';
import type { WatchEarlierRun, WatchPanelState } from '../protocol';

/** Lines of an earlier run's log kept for its fold. */
const KEPT_LINES = 200;
const KEPT_RUNS = 20;

export class WatchView {
  readonly button: HTMLElement;
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly logs = new Map<string, string>();
  private shown = '';

  constructor(onToggle: () => void) {
    this.button = h('vscode-button', { id: 'btn-watch', secondary: true, 'aria-pressed': 'false', hidden: true }, 'Watch: off');
    this.button.addEventListener('click', () => { if (!this.button.hasAttribute('disabled')) onToggle(); });
    this.list = h('div', { class: 'earlier-list' });
    this.el = h('section', { id: 'watch-earlier', class: 'watch-earlier', 'aria-label': 'Earlier runs of this watch', hidden: true }, this.list);
  }

  /** Keeps the end of a run's log as the panel moves on to the next run of the watch. */
  keepLog(runId: string, lines: string[]): void {
    if (!runId) return;
    this.logs.set(runId, lines.slice(-KEPT_LINES).join('\n'));
    while (this.logs.size > KEPT_RUNS) this.logs.delete(this.logs.keys().next().value!);
  }

  update(s: WatchPanelState): void {
    this.button.hidden = false;
    setText(this.button, `Watch: ${s.on ? 'on' : 'off'}`);
    setAttr(this.button, 'aria-pressed', s.on ? 'true' : 'false');
    setAttr(this.button, 'title', s.on
      ? 'Run on Save is on: a change to the build context stops this run and starts the next one. Click to turn it off.'
      : 'Run again whenever a file of the build context or the Dockerfile changes');
    const key = JSON.stringify(s.earlier);
    if (key === this.shown) return;
    this.shown = key;
    this.el.hidden = s.earlier.length === 0;
    this.list.replaceChildren(...s.earlier.map((r) => this.fold(r)));
  }

  private fold(r: WatchEarlierRun): HTMLElement {
    const facts = [r.runId, r.ended];
    if (r.durationMs !== undefined) facts.push(formatDuration(r.durationMs));
    if (r.costUsd !== undefined) facts.push(formatUsd(r.costUsd));
    const log = this.logs.get(r.runId);
    return h('details', { class: 'earlier-run', 'data-run-id': r.runId },
      h('summary', {}, facts.join(' · ')),
      log !== undefined ? h('pre', { class: 'earlier-log' }, log || '(no output)') : h('p', { class: 'muted' }, 'Its log is in its own panel: open it from the Runs view.'));
  }
}
