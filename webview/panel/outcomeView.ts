/** The warm/cold badge with its reason, and the exit status (OOM kills called out). */
import { h, setAttr, setText } from '../components/dom';
import type { ExitText, StartKindText } from './runOutcome';

export class StartKindView {
  readonly el: HTMLElement;
  private readonly badge: HTMLElement;
  private readonly reason: HTMLElement;

  constructor() {
    this.badge = h('vscode-badge', { id: 'start-kind', 'aria-label': 'Start kind' }, '…');
    this.reason = h('span', { id: 'start-kind-reason', class: 'muted' }, 'Warm or cold: known once the image is ready.');
    this.el = h('div', { class: 'start-kind' }, this.badge, this.reason);
  }

  update(t: StartKindText | undefined): void {
    if (!t) return;
    setText(this.badge, t.kind);
    setAttr(this.badge, 'data-kind', t.kind);
    setAttr(this.badge, 'aria-label', `${t.kind} start`);
    setText(this.reason, t.reason);
  }
}

export class ExitView {
  readonly el: HTMLElement;
  private readonly title: HTMLElement;
  private readonly detail: HTMLElement;

  constructor() {
    this.title = h('span', { class: 'exit-title' }, 'Not finished');
    this.detail = h('span', { class: 'exit-detail' });
    this.el = h('div', { id: 'exit-status', class: 'exit-status', role: 'status', 'data-tone': 'pending' }, this.title, this.detail);
  }

  update(t: ExitText | undefined, stateText: string): void {
    if (!t) {
      setText(this.title, stateText);
      setText(this.detail, '');
      setAttr(this.el, 'data-tone', 'pending');
      return;
    }
    setText(this.title, t.title);
    setText(this.detail, t.detail ?? '');
    setAttr(this.el, 'data-tone', t.tone);
    setAttr(this.el, 'data-oom', t.oom ? 'true' : null);
  }
}
