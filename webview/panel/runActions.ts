/** Stop, Open Shell, Run Again and Open Outputs, enabled by the run's state. */
import { h, setAttr, setText } from '../components/dom';
import { formatBytes } from '../components/format';

export interface ActionState {
  /** False until the host said which run this is (`init`). */
  known: boolean;
  finished: boolean;
  /** The container runs: a shell can be opened inside it. */
  running: boolean;
  stopping: boolean;
  outputs?: { files: number; bytes: number; notKept?: string };
  outputsAvailable: boolean;
}

export class RunActions {
  readonly el: HTMLElement;
  private readonly stop: HTMLElement;
  private readonly shell: HTMLElement;
  private readonly again: HTMLElement;
  private readonly outputs: HTMLElement;

  constructor(on: { stop(): void; openShell(): void; runAgain(): void; openOutputs(): void }) {
    this.stop = h('vscode-button', { id: 'btn-stop', title: 'Stop the container (SIGTERM, then SIGKILL)' }, 'Stop');
    this.shell = h('vscode-button', { id: 'btn-open-shell', secondary: true, title: 'A terminal inside the running container (the run goes on when it closes)' }, 'Open Shell');
    this.again = h('vscode-button', { id: 'btn-run-again', secondary: true, title: 'Same Dockerfile, same hardware' }, 'Run Again');
    this.outputs = h('vscode-button', { id: 'btn-open-outputs', secondary: true, title: 'The files the run left in its output folder' }, 'Open Outputs');
    // vscode-button still dispatches click when disabled in some versions: check before acting.
    const guard = (el: HTMLElement, fn: () => void) => el.addEventListener('click', () => { if (!el.hasAttribute('disabled')) fn(); });
    guard(this.stop, on.stop);
    guard(this.shell, on.openShell);
    guard(this.again, on.runAgain);
    guard(this.outputs, on.openOutputs);
    this.el = h('div', { class: 'run-actions', role: 'toolbar', 'aria-label': 'Run actions' }, this.stop, this.shell, this.again, this.outputs);
  }

  update(s: ActionState): void {
    setAttr(this.stop, 'disabled', !s.known || s.finished || s.stopping ? '' : null);
    setText(this.stop, s.stopping && !s.finished ? 'Stopping…' : 'Stop');
    setAttr(this.shell, 'disabled', s.known && s.running && !s.finished && !s.stopping ? null : '');
    setAttr(this.again, 'disabled', s.known && s.finished ? null : '');
    const has = s.outputsAvailable || (s.outputs?.files ?? 0) > 0;
    setAttr(this.outputs, 'disabled', s.known && s.finished && has ? null : '');
    setAttr(this.outputs, 'title', s.outputs?.notKept ?? 'The files the run left in its output folder');
    if (s.outputs?.notKept) return setText(this.outputs, 'Outputs not kept');
    setText(this.outputs, s.outputs && s.outputs.files > 0
      ? `Open Outputs (${s.outputs.files} file${s.outputs.files === 1 ? '' : 's'}, ${formatBytes(s.outputs.bytes)})`
      : 'Open Outputs');
  }
}
