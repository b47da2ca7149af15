/** A fan-out run's task filter (which task's log to show) and, once it ended, one row per task. */
import { h, setText } from '../components/dom';
import { formatDuration, formatUsd } from '../components/format';
import type { FinalEvent } from '../protocol';

/** "All tasks" or one task's index. */
export type TaskFilter = 'all' | number;

export class TaskFilterSelect {
  readonly el: HTMLElement;
  private readonly select: HTMLSelectElement;
  private count = 0;
  onChange: (f: TaskFilter) => void = () => {};

  constructor() {
    this.select = h('select', { id: 'task-filter', 'aria-label': 'Show the log of' }, h('option', { value: 'all' }, 'All tasks'));
    this.select.addEventListener('change', () => this.onChange(this.select.value === 'all' ? 'all' : Number(this.select.value)));
    this.el = h('label', { class: 'task-filter', hidden: true }, 'Log of ', this.select);
  }

  /** Shown only for a run of more than one task. */
  update(tasks: number): void {
    if (tasks <= this.count) return;
    for (let i = this.count; i < tasks; i++) this.select.append(h('option', { value: String(i) }, `Task ${i}`));
    this.count = tasks;
    this.el.hidden = tasks < 2;
  }
}

export class TasksTable {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private shownFor: FinalEvent | undefined;

  constructor() {
    this.body = h('tbody');
    this.el = h('table', { id: 'tasks-table', class: 'tasks', hidden: true },
      h('thead', {}, h('tr', {}, h('th', {}, 'Task'), h('th', {}, 'Exit code'), h('th', {}, 'Duration'), h('th', {}, 'Cost'))),
      this.body);
  }

  update(final: FinalEvent | undefined): void {
    if (final === this.shownFor) return;
    this.shownFor = final;
    const tasks = final?.tasks ?? [];
    this.el.hidden = tasks.length < 2;
    this.body.replaceChildren(...tasks.map((t) => h('tr', { 'data-task': String(t.index) },
      h('td', {}, `Task ${t.index}`),
      h('td', {}, t.exitCode === null ? (t.error ?? 'did not run') : `${t.exitCode}${t.oomKilled ? ' (out of memory)' : ''}`),
      h('td', {}, formatDuration(t.durationMs)),
      h('td', {}, formatUsd(t.cost.total)))));
    if (tasks.length === 0) setText(this.body, '');
  }
}
