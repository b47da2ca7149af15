/** The top of the panel: which Dockerfile, on which agent, on what hardware, and the run's state. */
import { h, setText } from '../components/dom';
import type { RunInfo } from '../protocol';

export class RunHeader {
  readonly el: HTMLElement;
  private readonly name: HTMLElement;
  private readonly dockerfile: HTMLElement;
  private readonly agent: HTMLElement;
  private readonly hardware: HTMLElement;
  private readonly runId: HTMLElement;

  constructor(readonly extra: HTMLElement[]) {
    this.name = h('h1', { id: 'run-name' }, 'Run');
    this.dockerfile = h('span', { id: 'run-dockerfile' });
    this.agent = h('span', { id: 'run-agent' });
    this.hardware = h('span', { id: 'run-hardware' });
    this.runId = h('span', { id: 'run-id', class: 'muted' });
    this.el = h('header', { id: 'run-header', class: 'run-header' },
      this.name,
      h('dl', { class: 'run-facts' },
        h('dt', {}, 'Dockerfile'), h('dd', {}, this.dockerfile),
        h('dt', {}, 'Agent'), h('dd', {}, this.agent),
        h('dt', {}, 'Hardware'), h('dd', {}, this.hardware),
        h('dt', {}, 'Run'), h('dd', {}, this.runId)),
      ...extra);
  }

  update(run: RunInfo | undefined, runId: string): void {
    setText(this.name, run?.name || run?.dockerfile || 'Run');
    setText(this.dockerfile, run?.dockerfile ?? '–');
    setText(this.agent, run?.agent ?? '–');
    setText(this.hardware, run?.hardware ?? '–');
    setText(this.runId, runId || '–');
    document.title = `ByteNite: ${run?.name || run?.dockerfile || runId}`;
  }
}
