/**
 * Hosts the run panels: one WebviewPanel per run. Answers the panel's `ready` with `init` and a replay of
 * the events it lacks, then streams live events in batches (every 50 ms or 2,000 events, at once after a
 * final one). A serializer re-creates panels after VS Code restarts, from the runId in the saved state.
 */
import * as vscode from 'vscode';
import type { FromPanel, PanelSavedState, RunInfo, SeqEvent, ToPanel, WatchPanelState } from '../../webview/protocol';
import type { Log } from '../log';
import { errorMessage, showError } from '../log';
import type { Run } from '../runs/run';
import type { RunStore } from '../runs/runStore';
import { recordPanelMarks, tracing } from '../runs/runTrace';
import { webviewHtml, webviewRoots } from './webviewHtml';

export const RUN_PANEL_VIEW_TYPE = 'bytenite.run';
const BATCH_MS = 50;
const BATCH_MAX = 2000;

export interface PanelActions {
  /** Re-follows a run known only from history; undefined when its agent no longer has it. */
  restore(runId: string): Promise<Run | undefined>;
  stop(runId: string): Promise<void>;
  runAgain(runId: string): Promise<void>;
  openOutputs(runId: string): Promise<void>;
  /** Opens a forwarded port in the browser. */
  openPort(runId: string, containerPort: number): Promise<void>;
  /** A terminal inside the running container. */
  openShell(runId: string): Promise<void>;
  /** Turns Run on Save on or off for the run's Dockerfile (the panel's Watch button). */
  toggleWatch(runId: string): Promise<void>;
  /** The Watch button's state and the earlier runs of the watch, for the run a panel shows. */
  watch(runId: string): WatchPanelState | undefined;
}

export class RunPanels implements vscode.WebviewPanelSerializer, vscode.Disposable {
  private readonly panels = new Map<string, RunPanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly store: RunStore,
    private readonly actions: PanelActions,
    private readonly log: Log,
  ) {}

  /**
   * Shows `runId` in the panel of the finished run `from`, as a task's terminal is reused: no new webview to
   * load (most of a hot Run Again's time was the new panel's first paint). False when `from` has no panel
   * or is still running (then its log stays where it is).
   */
  reuse(from: string, runId: string, preserveFocus = false): boolean {
    const p = this.panels.get(from);
    if (!p || this.panels.has(runId) || this.store.get(from)?.active) return false;
    this.panels.delete(from);
    this.panels.set(runId, p);
    p.retarget(runId, this.title(runId));
    p.panel.reveal(undefined, preserveFocus);
    return true;
  }

  /** Opens (or reveals) the panel of a run. */
  open(runId: string, preserveFocus = false): void {
    const existing = this.panels.get(runId);
    if (existing) {
      existing.panel.reveal(undefined, preserveFocus);
      return;
    }
    const title = this.title(runId);
    // Runs open beside the editor, and later runs join the column the earlier run panels are in.
    const column = [...this.panels.values()].map((p) => p.panel.viewColumn).find((c) => c !== undefined) ?? vscode.ViewColumn.Beside;
    const panel = vscode.window.createWebviewPanel(
      RUN_PANEL_VIEW_TYPE, title, { viewColumn: column, preserveFocus },
      { enableScripts: true, enableFindWidget: true, retainContextWhenHidden: false, localResourceRoots: webviewRoots(this.extensionUri) },
    );
    this.attach(panel, runId);
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const runId = (state as Partial<PanelSavedState> | undefined)?.runId;
    if (!runId) {
      panel.dispose();
      return;
    }
    panel.webview.options = { enableScripts: true, localResourceRoots: webviewRoots(this.extensionUri) };
    this.attach(panel, runId);
  }

  private title(runId: string): string {
    const info = this.store.get(runId)?.info ?? this.store.historyEntry(runId)?.info;
    return `ByteNite: ${info?.name ?? runId}`;
  }

  private attach(panel: vscode.WebviewPanel, runId: string): void {
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'bytenite.svg');
    const p = new RunPanel(panel, runId, this.store, this.actions, this.log);
    this.panels.set(runId, p);
    panel.onDidDispose(() => {
      // By the run it shows now: a reused panel has moved on from the run it was opened for.
      if (this.panels.get(p.runId) === p) this.panels.delete(p.runId);
      p.dispose();
    });
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'panel', panel.title);
  }

  /** Sends every panel its watch state again (Run on Save turned on or off, a watch started a run). */
  refreshWatch(): void {
    for (const p of this.panels.values()) p.sendWatch();
  }

  /** The watch state last sent to the panel now showing `runId` (read by the extension-host tests). */
  shownWatch(runId: string): WatchPanelState | undefined {
    return this.panels.get(runId)?.watchSent;
  }

  dispose(): void {
    for (const p of this.panels.values()) p.panel.dispose();
  }
}

class RunPanel {
  private readonly disposables: vscode.Disposable[] = [];
  private pending: SeqEvent[] = [];
  private timer?: NodeJS.Timeout;
  private live?: vscode.Disposable;
  private livePorts?: vscode.Disposable;
  /** Events up to this seq were posted to the current webview document. */
  private sentSeq = 0;
  /** The run's output has started reaching the document (later lines may wait for their batch). */
  private logSent = false;
  /** The last `watch` message posted. */
  watchSent?: WatchPanelState;

  constructor(
    readonly panel: vscode.WebviewPanel,
    private _runId: string,
    private readonly store: RunStore,
    private readonly actions: PanelActions,
    private readonly log: Log,
  ) {
    this.disposables.push(panel.webview.onDidReceiveMessage((m: FromPanel) => void this.onMessage(m)));
  }

  get runId(): string {
    return this._runId;
  }

  /** Follows another run in the same document: `init` with a new run id makes the page start over. */
  retarget(runId: string, title: string): void {
    this._runId = runId;
    this.panel.title = title;
    void this.onReady(0);
  }

  private post(m: ToPanel): void {
    void this.panel.webview.postMessage(m);
  }

  private async onMessage(m: FromPanel): Promise<void> {
    try {
      switch (m.type) {
        case 'ready': return await this.onReady(m.haveSeq);
        case 'stop': return await this.actions.stop(m.runId);
        case 'runAgain': return await this.actions.runAgain(m.runId);
        case 'openOutputs': return await this.actions.openOutputs(m.runId);
        case 'openPort': return await this.actions.openPort(m.runId, m.containerPort);
        case 'openShell': return await this.actions.openShell(m.runId);
        case 'toggleWatch': return await this.actions.toggleWatch(m.runId);
        case 'trace': {
          const run = this.store.get(m.runId);
          if (run && tracing()) recordPanelMarks(run, m.marks);
          return;
        }
        case 'copy':
          await vscode.env.clipboard.writeText(m.text);
          vscode.window.setStatusBarMessage(`Copied ${m.lines} log line(s)`, 2000);
          return;
      }
    } catch (err) {
      showError(this.log, `ByteNite: ${errorMessage(err)}`, err);
    }
  }

  /** A (re)loaded webview document: send who/what, replay what it lacks, then follow live. */
  private async onReady(haveSeq: number): Promise<void> {
    this.live?.dispose();
    this.livePorts?.dispose();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
    this.logSent = false;
    const run = this.store.get(this.runId) ?? (await this.actions.restore(this.runId));
    if (!run) {
      const h = this.store.historyEntry(this.runId);
      const info: RunInfo = h?.info ?? { runId: this.runId, name: this.runId, dockerfile: '', agent: '', hardware: '' };
      this.post({ type: 'init', run: info, snapshot: { state: h?.row.state ?? 'failed', lastSeq: 0, final: h?.final as never } });
      if (h?.final) this.post({ type: 'summary', runId: this.runId, final: h.final as never });
      return;
    }
    this.post({ type: 'init', run: run.info, snapshot: { state: run.state, lastSeq: run.lastSeq, final: run.final as never }, ...(tracing() ? { trace: true } : {}) });
    this.sendWatch();
    this.sentSeq = haveSeq;
    this.replay(run);
    this.live = run.onDidChange((events) => {
      if (events.length === 0) {
        this.post(run.lost
          ? { type: 'connection', state: 'disconnected', message: run.lost }
          : run.connectionProblem
            ? { type: 'connection', state: 'reconnecting', message: `Lost the agent: ${run.connectionProblem}. Reconnecting…` }
            : { type: 'connection', state: 'connected' });
        return;
      }
      this.pending.push(...events);
      const final = events.some((e) => ['exited', 'failed', 'cancelled'].includes(e.event.kind));
      // The run's first output goes at once: batching is for bursts, and the first line is what is waited for.
      const firstLog = !this.logSent && events.some((e) => e.event.kind === 'log' && e.event.stream !== 'build');
      if (final || firstLog || this.pending.length >= BATCH_MAX) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
      if (firstLog) run.marks.postedAt ??= Date.now();
    });
    if (run.connectionProblem) this.post({ type: 'connection', state: 'reconnecting', message: run.connectionProblem });
    if (run.ports.length) this.post({ type: 'ports', runId: this.runId, ports: run.ports });
    this.livePorts = run.onDidChangePorts((ports) => this.post({ type: 'ports', runId: this.runId, ports }));
  }

  sendWatch(): void {
    const w = this.actions.watch(this.runId);
    if (!w) return;
    this.watchSent = w;
    this.post({ type: 'watch', ...w });
  }

  private replay(run: Run): void {
    const from = run.events.findIndex((e) => e.seq > this.sentSeq);
    if (from < 0) return;
    if (!this.logSent && run.events.some((e) => e.event.kind === 'log' && e.event.stream !== 'build')) {
      this.logSent = true;
      run.marks.postedAt ??= Date.now();
    }
    for (let i = from; i < run.events.length; i += BATCH_MAX) {
      this.post({ type: 'events', runId: this.runId, events: run.events.slice(i, i + BATCH_MAX) });
    }
    this.sentSeq = run.lastSeq;
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const events = this.pending.filter((e) => e.seq > this.sentSeq);
    this.pending = [];
    if (!events.length) return;
    this.logSent ||= events.some((e) => e.event.kind === 'log' && e.event.stream !== 'build');
    this.sentSeq = events[events.length - 1].seq;
    this.post({ type: 'events', runId: this.runId, events });
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.live?.dispose();
    this.livePorts?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
