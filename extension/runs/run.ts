/**
 * One run as the views see it: who/what/where, every event with its seq (the panel replays them), and the
 * derived state the CodeLens, status bar and sidebar read (phase, cost so far, final result).
 */
import * as vscode from 'vscode';
import type { FinalEvent, HardwareRequest, RunEvent } from '../../agent/protocol';
import type { PortView, RunInfo, RunRowView, RunState, SeqEvent } from '../../webview/protocol';

/**
 * Epoch ms of each step from a click to the run's first line on screen (runTrace.ts writes them when
 * BYTENITE_RUN_TRACE is set): stamping costs a Date.now() each, so they are taken whether or not anyone reads them.
 * `clickAt`, `receivedAt`, `insertedAt` and `paintedAt` are the run panel's page clock (timeOrigin + now).
 */
export interface StartMarks {
  /** Run Again clicked in the panel. */
  clickAt?: number;
  /** The command began in the extension host. */
  commandAt?: number;
  /** The build options were settled (context folder, stage, ports, secrets, volumes). */
  optionsAt?: number;
  /** The context was listed and hashed. */
  contextAt?: number;
  /** `run.create` was handed to the socket. */
  requestAt?: number;
  /** The agent's `run.accepted` arrived. */
  acceptedAt?: number;
  /** The first container output was posted to the panel. */
  postedAt?: number;
  /** The panel's page received it, inserted its row and painted the frame with it. */
  receivedAt?: number;
  insertedAt?: number;
  paintedAt?: number;
}

export class Run {
  readonly events: SeqEvent[] = [];
  readonly marks: StartMarks = {};
  state: RunState = 'queued';
  lastSeq = 0;
  costUsd = 0;
  final?: FinalEvent;
  /** Epoch ms the container started running (from the `running` event). */
  startedAt?: number;
  /** Why the connection is down, while it is. */
  connectionProblem?: string;
  private readonly changed = new vscode.EventEmitter<SeqEvent[]>();
  /** Fires with the new events (possibly none, for a connection change). */
  readonly onDidChange = this.changed.event;
  /** Container ports forwarded to this machine (none unless the run was started here with ports). */
  ports: PortView[] = [];
  private readonly portsChanged = new vscode.EventEmitter<PortView[]>();
  readonly onDidChangePorts = this.portsChanged.event;

  constructor(
    readonly info: RunInfo,
    readonly dockerfile: vscode.Uri,
    readonly hardware: HardwareRequest,
    readonly createdAt = Date.now(),
  ) {}

  get runId(): string {
    return this.info.runId;
  }

  /** Set when the agent no longer knows the run (it restarted, say): no final event will come. */
  lost?: string;

  get active(): boolean {
    return !this.final && !this.lost;
  }

  markLost(reason: string): void {
    this.lost = reason;
    this.connectionProblem = reason;
    if (!this.final) this.state = 'failed';
    this.changed.fire([]);
  }

  /** Adds an event; ignores one whose seq it already has (replays after a reconnect overlap). */
  add(seq: number, event: RunEvent, at = Date.now()): void {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    const e: SeqEvent = { seq, at, event: event as SeqEvent['event'] };
    this.events.push(e);
    switch (event.kind) {
      // One task of a fan-out run queued again does not take a run that already started back to queued.
      case 'queued': if (event.task === undefined || this.state === 'queued') this.state = 'queued'; break;
      case 'uploading': if (!event.to) this.state = 'uploading'; break;
      case 'building': this.state = 'building'; break;
      case 'starting': this.state = 'starting'; break;
      case 'running': this.state = 'running'; this.startedAt = Date.parse(event.startedAt) || Date.now(); break;
      case 'cost': this.costUsd = event.total; break;
      case 'exited': case 'failed': case 'cancelled':
        this.state = event.kind;
        this.final = event;
        this.costUsd = event.cost.total;
        break;
    }
    this.changed.fire([e]);
  }

  setPorts(ports: PortView[]): void {
    this.ports = ports.map((p) => ({ ...p }));
    this.portsChanged.fire(this.ports);
  }

  /** The forward of `containerPort` that accepts connections now, if any. */
  readyPort(containerPort?: number): PortView | undefined {
    return this.ports.find((p) => p.state === 'ready' && (containerPort === undefined || p.containerPort === containerPort));
  }

  setConnectionProblem(problem: string | undefined): void {
    this.connectionProblem = problem;
    this.changed.fire([]);
  }

  /** Time in the current phase, or the container's run time once it runs. */
  elapsedMs(now = Date.now()): number {
    if (this.final) return this.final.durationMs;
    return now - (this.startedAt ?? this.createdAt);
  }

  row(): RunRowView {
    return {
      runId: this.runId, name: this.info.name, state: this.state, start: this.final?.start ?? this.startKind(),
      createdAt: new Date(this.createdAt).toISOString(), durationMs: this.final ? this.final.durationMs : this.startedAt ? Date.now() - this.startedAt : undefined,
      costUsd: this.costUsd, exitCode: this.final?.exitCode, oomKilled: this.final?.oomKilled,
    };
  }

  private startKind() {
    for (const e of this.events) if (e.event.kind === 'starting') return e.event.start;
    return undefined;
  }

  dispose(): void {
    this.changed.dispose();
    this.portsChanged.dispose();
  }
}
