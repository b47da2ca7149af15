/**
 * The run panel: receives the host's messages, folds run events into the model and the log, and keeps
 * the views and the saved state up to date.
 *
 * Events are applied in slices of ~12 ms (then the page gets a turn), so a replay of 100,000 lines after
 * a restore never freezes the panel; views redraw at most once per animation frame.
 */
import { CostView } from '../components/costView';
import { h, setText } from '../components/dom';
import { LineStore } from '../components/lineStore';
import { LogView } from '../components/logView';
import { StatsChart } from '../components/statsChart';
import { vscodeApi } from '../components/vscodeApi';
import type { FromPanel, LogStream, PanelSavedState, RunInfo, SeqEvent, ToPanel } from '../protocol';
import { TickerDisplay, tickerCost } from './costTicker';
import { ExitView, StartKindView } from './outcomeView';
import { phaseRows } from './phaseRows';
import { PhasesView } from './phasesView';
import { PortsView } from './portsView';
import { RunActions } from './runActions';
import { RunHeader } from './runHeader';
import { type RunModel, applyEvent, newRunModel, setFinal } from './runModel';
import { exitText, startKindText } from './runOutcome';
import { makeSavedState, readSavedState } from './savedState';
import { TaskLabeller, TaskStores } from './taskLog';
import { type TaskFilter, TaskFilterSelect, TasksTable } from './tasksView';
import { WatchView } from './watchView';

const SLICE_MS = 12;
const SAVE_EVERY_MS = 1000;
const TICK_MS = 250;

/** Epoch ms on this page's clock, comparable with the extension host's Date.now() on the same machine. */
const pageNow = () => performance.timeOrigin + performance.now();

const STATE_TEXT: Record<RunModel['state'], string> = {
  queued: 'Queued…', uploading: 'Uploading the build context…', building: 'Building the image…',
  starting: 'Starting the container…', running: 'Running…', exited: 'Exited', failed: 'Failed', cancelled: 'Stopped',
};

export class PanelApp {
  private readonly api = vscodeApi<FromPanel, PanelSavedState>();
  private run: RunInfo | undefined;
  private model: RunModel;
  private store: LineStore;
  private readonly log: LogView;
  private readonly header: RunHeader;
  private readonly phases = new PhasesView();
  private readonly startKind = new StartKindView();
  private readonly exit = new ExitView();
  private readonly cost = new CostView();
  private readonly chart = new StatsChart();
  private readonly actions: RunActions;
  private readonly ports: PortsView;
  private readonly watch: WatchView;
  private readonly banner: HTMLElement;
  private readonly ticker = new TickerDisplay();
  private queue: SeqEvent[][] = [];
  private queuePos = 0;
  private pumpScheduled = false;
  /** Yields to the page between slices without setTimeout's 4 ms clamp (a message is a new task). */
  private readonly yieldChannel = new MessageChannel();
  private uiFrame = 0;
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private stopping = false;
  private outputsAvailable = false;
  /** True when the panel's restored lines are incomplete: an `init` that precedes a replay starts over. */
  private resetOnInit: boolean;
  private lastTime = { text: '', ms: 0 };
  // Fan-out: `store` holds every task's lines, labelled; the filter shows one task's own store instead.
  // The per-task stores are not saved: after a restore they fill again only from a replay.
  private labeller = new TaskLabeller();
  private taskStores = new TaskStores();
  private taskFilter: TaskFilter = 'all';
  private readonly taskSelect = new TaskFilterSelect();
  private readonly tasksTable = new TasksTable();
  /** The host measures (init's `trace`): the page reports when each run's first line was on screen. */
  private traceOn = false;
  private tracedRunId = '';
  private clickAt: number | undefined;
  private eventsAt = 0;

  constructor(root: HTMLElement) {
    const restored = readSavedState(this.api.getState());
    this.run = restored?.run;
    this.model = restored?.model ?? newRunModel('');
    this.store = restored?.store ?? new LineStore();
    this.stopping = restored?.stopping ?? false;
    this.outputsAvailable = restored?.outputsAvailable ?? false;
    const haveSeq = restored?.haveSeq ?? 0;
    this.resetOnInit = haveSeq === 0;

    this.log = new LogView(this.store, restored?.ui);
    this.log.onUiChange = () => this.scheduleSave();
    this.log.onCopy = (text, lines) => this.post({ type: 'copy', text, lines });
    this.taskSelect.onChange = (f) => {
      this.taskFilter = f;
      this.log.setStore(f === 'all' ? this.store : this.taskStores.get(f));
    };
    this.actions = new RunActions({
      stop: () => {
        this.stopping = true;
        this.post({ type: 'stop', runId: this.model.runId });
        this.scheduleUi();
      },
      openShell: () => this.post({ type: 'openShell', runId: this.model.runId }),
      runAgain: () => {
        this.clickAt = pageNow();
        this.post({ type: 'runAgain', runId: this.model.runId });
      },
      openOutputs: () => this.post({ type: 'openOutputs', runId: this.model.runId }),
    });
    this.ports = new PortsView((containerPort) => this.post({ type: 'openPort', runId: this.model.runId, containerPort }));
    this.watch = new WatchView(() => this.post({ type: 'toggleWatch', runId: this.model.runId }));
    this.actions.el.append(this.watch.button);
    this.header = new RunHeader([this.startKind.el, this.exit.el, this.actions.el]);
    this.banner = h('div', { id: 'connection-banner', class: 'banner', role: 'alert', hidden: true });
    root.append(
      this.watch.el,
      this.header.el,
      this.banner,
      this.ports.el,
      h('div', { class: 'cards' }, this.phases.el, this.cost.el, this.chart.el),
      this.tasksTable.el,
      this.taskSelect.el,
      this.log.el,
    );
    this.log.mount();
    this.updateUi();

    window.addEventListener('message', (e: MessageEvent) => this.onMessage(e.data as ToPanel));
    this.yieldChannel.port1.onmessage = () => {
      this.pumpScheduled = false;
      this.pump();
    };
    setInterval(() => { if (!this.model.final) this.scheduleUi(); }, TICK_MS);
    this.post(this.model.runId ? { type: 'ready', runId: this.model.runId, haveSeq } : { type: 'ready', haveSeq });
  }

  private post(m: FromPanel): void {
    this.api.postMessage(m);
  }

  private onMessage(m: ToPanel): void {
    if (!m || typeof m !== 'object' || typeof (m as { type?: unknown }).type !== 'string') return;
    switch (m.type) {
      case 'init':
        // Start over when the host is about to replay (it has events); with nothing to replay (a run known
        // only from history), the restored lines are the only log there is: keep them.
        if (m.run.runId !== this.model.runId || (this.resetOnInit && m.snapshot.lastSeq > 0)) this.reset(m.run.runId);
        this.resetOnInit = false;
        this.traceOn = m.trace === true;
        this.run = m.run;
        if (m.snapshot.final && !this.model.final) setFinal(this.model, m.snapshot.final);
        if (this.model.seq === 0 && !this.model.final) this.model.state = m.snapshot.state;
        break;
      case 'events':
        if (m.runId !== this.model.runId || !Array.isArray(m.events)) return;
        if (this.traceOn) this.eventsAt = pageNow();
        this.queue.push(m.events);
        this.pump();
        return;
      case 'summary':
        if (m.runId !== this.model.runId) return;
        setFinal(this.model, m.final);
        break;
      case 'connection':
        this.banner.hidden = m.state === 'connected';
        setText(this.banner, m.message ?? (m.state === 'reconnecting' ? 'Connection to the agent lost; reconnecting…' : 'Disconnected from the agent.'));
        return;
      case 'outputs':
        if (m.runId !== this.model.runId) return;
        this.outputsAvailable = m.available;
        break;
      case 'ports':
        if (m.runId !== this.model.runId || !Array.isArray(m.ports)) return;
        this.ports.update(m.ports);
        return;
      case 'watch':
        if (m.runId !== this.model.runId || !Array.isArray(m.earlier)) return;
        this.watch.update(m);
        return;
      default:
        return;
    }
    this.scheduleUi();
    this.scheduleSave();
  }

  private reset(runId: string): void {
    // The panel moves on to the next run (Run Again, Run on Save): the end of this one's log stays, folded.
    if (this.model.runId && this.model.runId !== runId) this.watch.keepLog(this.model.runId, this.store.lines.slice(-200).map((l) => l.text));
    this.model = newRunModel(runId);
    this.store = new LineStore();
    this.labeller = new TaskLabeller();
    this.taskStores = new TaskStores();
    this.taskFilter = 'all';
    this.log.setStore(this.store);
    this.queue = [];
    this.queuePos = 0;
    this.stopping = false;
    this.outputsAvailable = false;
    this.ticker.next(0, true);
    // What the views show of the last run goes with it (they otherwise change only as new events come).
    this.cost.clear();
    this.chart.clear();
  }

  /** Applies queued events for one slice of time, then yields to the page and continues. */
  private pump(): void {
    if (this.pumpScheduled) return;
    const deadline = performance.now() + SLICE_MS;
    let n = 0;
    let final = false;
    outer: while (this.queue.length > 0) {
      const batch = this.queue[0];
      while (this.queuePos < batch.length) {
        const se = batch[this.queuePos++];
        const r = applyEvent(this.model, se);
        if (r === 'log' && se.event.kind === 'log') {
          const e = se.event;
          if (e.time !== this.lastTime.text) this.lastTime = { text: e.time, ms: Date.parse(e.time) || se.at };
          if (e.task === undefined) this.log.append(e.stream, e.data, this.lastTime.ms);
          else this.appendTask(e.task, e.stream, e.data, this.lastTime.ms);
          if (this.traceOn && e.stream !== 'build' && this.tracedRunId !== this.model.runId) this.traceFirstLine();
        } else if (r === 'changed' && this.model.final) {
          final = true;
        }
        if ((++n & 63) === 0 && performance.now() > deadline) break outer;
      }
      this.queue.shift();
      this.queuePos = 0;
    }
    this.log.endBatch();
    this.scheduleUi();
    if (final) this.save();
    else this.scheduleSave();
    if (this.queue.length > 0) {
      this.pumpScheduled = true;
      this.yieldChannel.port2.postMessage(null);
    }
  }

  /**
   * The run's first container line was just appended: the log view's frame callback (asked for by that
   * append) draws its row, the one asked for here runs after it in the same frame, and a task posted from
   * there runs once that frame's rendering (style, layout, paint) is done. (A second frame callback would
   * add most of a frame, ~16 ms, after the paint.)
   */
  private traceFirstLine(): void {
    const runId = this.model.runId;
    const clickAt = this.clickAt;
    const receivedAt = this.eventsAt;
    this.tracedRunId = runId;
    this.clickAt = undefined;
    requestAnimationFrame(() => {
      const insertedAt = pageNow();
      const after = new MessageChannel();
      after.port1.onmessage = () => {
        after.port1.close();
        this.post({ type: 'trace', runId, marks: { clickAt, receivedAt, insertedAt, paintedAt: pageNow() } });
      };
      after.port2.postMessage(null);
    });
  }

  /** A fan-out task's chunk: labelled into "All tasks", as is into its own store; the shown one via the view. */
  private appendTask(task: number, stream: LogStream, data: string, time: number): void {
    const labelled = this.labeller.label(task, stream, data);
    if (this.taskFilter === 'all') this.log.append(stream, labelled, time);
    else this.store.append(stream, labelled, time);
    if (this.taskFilter === task) this.log.append(stream, data, time);
    else this.taskStores.get(task).append(stream, data, time);
  }

  private scheduleUi(): void {
    if (this.uiFrame) return;
    this.uiFrame = requestAnimationFrame(() => {
      this.uiFrame = 0;
      this.updateUi();
    });
  }

  private updateUi(): void {
    const m = this.model;
    const now = Date.now();
    this.header.update(this.run, m.runId);
    this.phases.update(phaseRows(m, now));
    const start = m.start ?? (m.final ? { kind: m.final.start, steps: m.final.steps, cachedSteps: m.final.cachedSteps } : undefined);
    this.startKind.update(start && startKindText(start.kind, m.final?.steps ?? start.steps, m.final?.cachedSteps ?? start.cachedSteps));
    const memory = this.run?.hardware.split('·').map((s) => s.trim()).find((s) => /iB$/.test(s));
    this.exit.update(m.final && exitText(m.final, memory), m.runId ? STATE_TEXT[m.state] : 'Waiting for the run…');
    if (m.final) this.cost.showFinal(m.final.cost);
    else this.cost.showLive(this.ticker.next(tickerCost(m, now, this.run?.hourlyUsd), false), m.cost?.billedMs);
    this.chart.update(m.stats);
    this.taskSelect.update(m.taskCount ?? 0);
    this.tasksTable.update(m.final);
    this.actions.update({ known: m.runId !== '', finished: !!m.final, running: m.state === 'running', stopping: this.stopping, outputs: m.final?.outputs, outputsAvailable: this.outputsAvailable });
  }

  private scheduleSave(): void {
    if (this.saveTimer !== undefined) return;
    this.saveTimer = setTimeout(() => this.save(), SAVE_EVERY_MS);
  }

  private save(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (!this.model.runId) return;
    this.api.setState(makeSavedState(this.run, this.model, this.store, this.log.uiState,
      { stopping: this.stopping, outputsAvailable: this.outputsAvailable }));
  }
}
