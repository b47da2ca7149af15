/**
 * The sidebar's Schedules section: one row per schedule (name, cron, next time in local time, last result,
 * paused) with Run now, Pause/Resume and Remove, and under it the schedule's past runs, each a run row that
 * opens its panel. Hidden when the agent keeps no schedules.
 */
import { h } from '../components/dom';
import type { ScheduleRowView } from '../protocol';
import { runWhen, scheduleRowText } from './scheduleModel';
import { runRowText, sortRuns } from './sidebarModel';

/** Past runs shown under a schedule; the run history has them all. */
const RUNS_SHOWN = 5;

export class SchedulesView {
  readonly section: HTMLElement;
  private readonly list: HTMLElement;

  constructor() {
    this.list = h('ul', { id: 'schedules', class: 'list', 'aria-label': 'Schedules on the agent' });
    this.section = h('section', { id: 'schedules-section', 'aria-label': 'Schedules', hidden: true },
      h('div', { class: 'section-title' }, 'Schedules'), this.list);
  }

  render(schedules: ScheduleRowView[] | undefined, trusted: boolean): void {
    this.section.hidden = schedules === undefined;
    if (!schedules) return;
    if (!schedules.length) {
      this.list.replaceChildren(h('li', { class: 'empty muted' }, 'No schedules. ByteNite: Schedule… adds one.'));
      return;
    }
    const now = new Date();
    this.list.replaceChildren(...schedules.map((s) => {
      const t = scheduleRowText(s, now);
      const button = (action: string, text: string, label: string) => h('vscode-button', {
        class: `schedule-${action}`, 'data-action': 'schedule', 'data-schedule-action': action, 'data-schedule': s.name,
        'aria-label': `${label} schedule ${s.name}`, title: `${label} schedule ${s.name}`, secondary: true, disabled: action === 'run' && !trusted,
      }, text);
      const runs = sortRuns(s.runs).slice(0, RUNS_SHOWN);
      return h('li', { class: 'schedule-row', 'data-schedule': s.name, 'data-paused': s.paused ? 'true' : 'false', 'data-tone': t.tone, title: t.label, 'aria-label': t.label },
        h('div', { class: 'schedule-head' },
          h('span', { class: 'run-dot', 'aria-hidden': 'true' }),
          h('span', { class: 'schedule-name' }, s.name),
          h('span', { class: 'schedule-cron muted' }, s.cron)),
        h('div', { class: 'schedule-when muted' },
          h('span', { class: 'schedule-next' }, t.next), ' · ', h('span', { class: 'schedule-last' }, t.last), ' · ', h('span', { class: 'schedule-totals' }, t.totals)),
        h('div', { class: 'schedule-actions' },
          button('run', 'Run now', 'Run now'),
          s.paused ? button('resume', 'Resume', 'Resume') : button('pause', 'Pause', 'Pause'),
          button('remove', 'Remove', 'Remove')),
        h('ul', { class: 'list schedule-runs', 'aria-label': `Runs of schedule ${s.name}, newest first` }, ...runs.map((r) => {
          const rt = runRowText(r);
          return h('li', {}, h('button', {
            class: 'run-row', 'data-action': 'open', 'data-run-id': r.runId, 'data-state': r.state, 'data-tone': rt.tone,
            'aria-label': `Open run: ${rt.label} ${r.runId}`, title: `${r.runId} · ${rt.label}`,
          },
          h('span', { class: 'run-dot', 'aria-hidden': 'true' }),
          h('span', { class: 'run-name' }, runWhen(r.createdAt)),
          h('span', { class: 'run-status' }, rt.status),
          h('span', { class: 'run-duration num muted' }, rt.duration),
          h('span', { class: 'run-cost num' }, rt.cost)));
        })));
    }));
  }
}
