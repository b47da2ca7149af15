/**
 * The selected agent's schedules and their runs, for the sidebar and the schedule commands: `schedule.list`
 * and `run.list` asked together (at most once a second however often the view redraws), and every few seconds
 * while the sidebar shows, since firings happen on the agent without us. The schedules' runs go into the run
 * history too (they are ordinary runs), so each opens its panel as a history row does.
 */
import * as vscode from 'vscode';
import type { AgentClient } from '../../agent/client/agentClient';
import type { ScheduleSummary } from '../../agent/protocol';
import type { ScheduleRowView } from '../../webview/protocol';
import type { AgentManager } from '../agents/agentManager';
import { errorMessage, type Log } from '../log';
import { toEntry } from '../runs/agentRunHistory';
import type { RunStore } from '../runs/runStore';
import { scheduleRow, scheduleRunName } from './scheduleRows';

const FRESH_MS = 1000;
const POLL_MS = 5000;

export class ScheduleList implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private cache?: { agent: string; at: number; rows: ScheduleRowView[] | undefined };
  private timer?: NodeJS.Timeout;

  constructor(private readonly agents: AgentManager, private readonly store: RunStore, private readonly log: Log) {}

  /** The selected agent's client, when it is connected and keeps schedules. */
  async client(timeoutMs = 2000): Promise<AgentClient | undefined> {
    const client = await this.agents.selected().get(timeoutMs);
    return client.hello.capabilities.includes('schedules') ? client : undefined;
  }

  /** The rows of the Schedules section; undefined when the agent keeps none (or did not answer). */
  async rows(): Promise<ScheduleRowView[] | undefined> {
    const agent = this.agents.selectedName();
    if (this.cache?.agent === agent && Date.now() - this.cache.at < FRESH_MS) return this.cache.rows;
    let rows: ScheduleRowView[] | undefined;
    try {
      const client = await this.client();
      if (client) {
        const [schedules, runs] = await Promise.all([client.schedules(), client.list()]);
        const names = new Set(schedules.map((s) => scheduleRunName(s.name)));
        const conn = this.agents.selected();
        const entries = runs.filter((r) => r.name !== undefined && names.has(r.name)).map((r) => toEntry(r, conn));
        this.store.merge(entries);
        rows = schedules.map((s) => scheduleRow(s, entries.map((e) => this.store.get(e.info.runId)?.row() ?? e.row)));
      }
    } catch (err) {
      this.log.trace(`schedules of "${agent}" not listed: ${errorMessage(err)}`);
    }
    this.cache = { agent, at: Date.now(), rows };
    return rows;
  }

  /** Run now, pause, resume or remove `name` on the selected agent; the rows are asked again after. */
  async act(action: 'run' | 'pause' | 'resume' | 'remove', name: string): Promise<ScheduleSummary | undefined> {
    const client = await this.client(15_000);
    if (!client) throw new Error(`agent "${this.agents.selectedName()}" keeps no schedules`);
    try {
      if (action === 'remove') {
        await client.removeSchedule(name);
        return undefined;
      }
      return await client.scheduleAction(action, name);
    } finally {
      this.fireChanged();
    }
  }

  /** Forgets the cached rows and tells the sidebar. */
  fireChanged(): void {
    this.cache = undefined;
    this.changed.fire();
  }

  /** Asks again every POLL_MS while `on` (the sidebar shows), not at all otherwise. */
  poll(on: boolean): void {
    if (on && !this.timer) this.timer = setInterval(() => this.fireChanged(), POLL_MS);
    if (!on && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
    this.changed.dispose();
  }
}
