/**
 * The runs of this workspace: live ones with their events, and a capped history (rows plus final events)
 * kept in the workspace state so the sidebar and restored panels survive a restart.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { FinalEvent } from '../../agent/protocol';
import type { RunInfo, RunRowView, SeqEvent } from '../../webview/protocol';
import { Run } from './run';

const KEY = 'bytenite.runHistory';
const MAX_HISTORY = 100;
/** Finished runs whose events are kept on disk, so their panels come back whole after a restart. */
const MAX_SAVED_EVENTS = 30;
const MAX_SAVED_BYTES = 32 * 1024 * 1024;

export interface HistoryEntry {
  info: RunInfo;
  dockerfile: string;
  row: RunRowView;
  final?: FinalEvent;
  hardware: Run['hardware'];
}

/** Newest first, at most MAX_HISTORY. */
function sortCap(entries: HistoryEntry[]): HistoryEntry[] {
  return entries.sort((a, b) => Date.parse(b.row.createdAt) - Date.parse(a.row.createdAt)).slice(0, MAX_HISTORY);
}

export class RunStore implements vscode.Disposable {
  private readonly live = new Map<string, Run>();
  private history: HistoryEntry[];
  private readonly changed = new vscode.EventEmitter<Run | undefined>();
  private readonly added = new vscode.EventEmitter<Run>();
  /** Fires when a run changes state or cost (not on every log line). */
  readonly onDidChange = this.changed.event;
  readonly onDidAdd = this.added.event;

  constructor(private readonly state: vscode.Memento, private readonly eventsDir?: string) {
    this.history = state.get<HistoryEntry[]>(KEY, []);
  }

  add(run: Run): void {
    this.live.set(run.runId, run);
    let last = `${run.state}:${run.costUsd}:${run.connectionProblem ?? ''}`;
    run.onDidChange(() => {
      const now = `${run.state}:${run.costUsd}:${run.connectionProblem ?? ''}`;
      if (now === last) return;
      last = now;
      if (run.final) {
        this.remember(run);
        void this.saveEvents(run);
      }
      this.changed.fire(run);
    });
    run.onDidChangePorts(() => this.changed.fire(run)); // the CodeLens and status bar show forwards
    this.remember(run);
    this.added.fire(run);
    this.changed.fire(run);
  }

  get(runId: string): Run | undefined {
    return this.live.get(runId);
  }

  historyEntry(runId: string): HistoryEntry | undefined {
    return this.history.find((h) => h.info.runId === runId);
  }

  /** Live runs, newest first. */
  liveRuns(): Run[] {
    return [...this.live.values()].sort((a, b) => b.createdAt - a.createdAt);
  }

  activeRuns(): Run[] {
    return this.liveRuns().filter((r) => r.active);
  }

  /** The run in progress for this Dockerfile, if any. */
  activeFor(dockerfile: vscode.Uri): Run | undefined {
    return this.activeRuns().find((r) => r.dockerfile.toString() === dockerfile.toString());
  }

  /** The newest run (live or remembered). */
  latest(): HistoryEntry | undefined {
    return this.history[0];
  }

  /** Rows for the sidebar: live runs fresh, remembered ones from history, newest first. */
  rows(): RunRowView[] {
    return this.history.map((h) => this.live.get(h.info.runId)?.row() ?? h.row);
  }

  /**
   * Adds the runs (from an agent's list) that the history lacks, keeping it newest first and capped;
   * returns how many were added. Entries already known are left alone (the extension's copy is at least as
   * fresh), except one that had not ended when listed and that no live run here follows.
   */
  merge(entries: HistoryEntry[]): number {
    const known = new Map(this.history.map((h) => [h.info.runId, h]));
    const fresh = entries.filter((e) => !known.has(e.info.runId) && !this.live.has(e.info.runId));
    // A run first listed while it went (a schedule's, say) and followed by nobody here: its end replaces it.
    const ended = entries.filter((e) => {
      const h = known.get(e.info.runId);
      return h && !h.final && !this.live.has(e.info.runId) && (e.final || e.row.state !== h.row.state);
    });
    if (!fresh.length && !ended.length) return 0;
    const replaced = new Set(ended.map((e) => e.info.runId));
    this.history = sortCap([...this.history.filter((h) => !replaced.has(h.info.runId)), ...ended, ...fresh]);
    void this.state.update(KEY, this.history);
    this.changed.fire(undefined);
    return fresh.length;
  }

  /** Forgets every run, live or remembered, and their saved events (the extension's copy only: agents keep theirs). */
  async clear(): Promise<void> {
    for (const r of this.live.values()) r.dispose();
    this.live.clear();
    this.history = [];
    await this.state.update(KEY, this.history);
    if (this.eventsDir) await fs.rm(this.eventsDir, { recursive: true, force: true });
    this.changed.fire(undefined);
  }

  /** The events of a finished run, as saved when it ended; undefined when they were not kept. */
  async loadEvents(runId: string): Promise<SeqEvent[] | undefined> {
    if (!this.eventsDir) return undefined;
    try {
      return JSON.parse(await fs.readFile(path.join(this.eventsDir, `${runId}.json`), 'utf8')) as SeqEvent[];
    } catch {
      return undefined;
    }
  }

  private async saveEvents(run: Run): Promise<void> {
    if (!this.eventsDir) return;
    try {
      const text = JSON.stringify(run.events);
      if (text.length > MAX_SAVED_BYTES) return;
      await fs.mkdir(this.eventsDir, { recursive: true });
      await fs.writeFile(path.join(this.eventsDir, `${run.runId}.json`), text);
      const keep = new Set(this.history.slice(0, MAX_SAVED_EVENTS).map((h) => `${h.info.runId}.json`));
      for (const f of await fs.readdir(this.eventsDir)) if (!keep.has(f)) await fs.rm(path.join(this.eventsDir, f), { force: true });
    } catch {
      // Only a nicety for restored panels: they fall back to the summary.
    }
  }

  private remember(run: Run): void {
    const entry: HistoryEntry = {
      info: run.info, dockerfile: run.dockerfile.toString(), row: run.row(), final: run.final, hardware: run.hardware,
    };
    const rest = this.history.filter((h) => h.info.runId !== run.runId);
    this.history = sortCap([entry, ...rest]);
    void this.state.update(KEY, this.history);
  }

  dispose(): void {
    for (const r of this.live.values()) r.dispose();
    this.changed.dispose();
    this.added.dispose();
  }
}
