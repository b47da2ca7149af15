/**
 * Messages between the extension host and the two webviews (the run panel and the sidebar view), both
 * directions as discriminated unions on `type`. Plain TS types only: webview code imports nothing outside
 * webview/, so the few agent shapes it needs are repeated here; test/unit/webview-protocol.test.ts fails
 * to type-check if they drift from agent/protocol/messages.ts.
 *
 * Run panel (one per run):
 *   1. The host creates the panel and writes its HTML (see the contract in webview/README.md).
 *   2. The panel script posts `ready` with `haveSeq`: the highest event seq it already holds in full from
 *      its saved state (0 when it has nothing, or when its saved state was trimmed).
 *   3. The host answers `init` (who/what/where + the host's snapshot of the run), then every event with
 *      `seq > haveSeq` in `events` batches, oldest first, then live events as they come, also batched:
 *      flush every ~50 ms or every 2,000 events, whichever comes first, and at once after a final event.
 *      The panel ignores events whose seq it already has, so overlap is harmless; a gap is not.
 *   4. When the host knows the run's final event without having its events (a run from `run.list`, or
 *      after VS Code restarted), it sends `summary` instead; the panel shows phases, exit and cost from it.
 *   5. After a webview reload (hidden and shown, or VS Code restarted) the panel repeats from step 2.
 *      The panel's saved state (`acquireVsCodeApi().setState`) is a `PanelSavedState`: a
 *      `WebviewPanelSerializer` reads `runId` from it to reattach the panel to its run.
 *
 * Sidebar view: the script posts `ready`; the host answers with the whole `SidebarState` and sends it
 * again whenever something in it changes and whenever the view becomes visible. It is small (the run
 * history is capped by the host), so there are no deltas.
 */

// ---------------------------------------------------------------- agent shapes (copied, type-only)

export type StartKind = 'hot' | 'warm' | 'cold';
export type LogStream = 'stdout' | 'stderr' | 'build';
export type RunState = 'queued' | 'uploading' | 'building' | 'starting' | 'running' | 'exited' | 'failed' | 'cancelled';

/** Time spent in each phase, in milliseconds (agent `Phases`). */
export interface Phases { queuedMs: number; uploadMs: number; buildMs: number; startMs: number; runMs: number }

/** Cost of a run (agent `CostBreakdown`). */
export interface CostBreakdown {
  currency: 'USD'; total: number; vcpu: number; memory: number; gpu: number; billedMs: number;
  reference: { name: string; total: number; unpriced?: string }[];
}

/** How one task of a fan-out run ended (agent `TaskResult`). */
export interface TaskResult {
  index: number; exitCode: number | null; oomKilled: boolean; durationMs: number; cost: CostBreakdown; error?: string;
}

interface FinalFields {
  exitCode: number | null; oomKilled: boolean; durationMs: number; cost: CostBreakdown; start: StartKind;
  steps: number; cachedSteps: number; phases: Phases;
  /** `notKept`: why the agent could not keep them (the limit and the flag that raises it). */
  outputs: { files: number; bytes: number; expiresAt?: string; notKept?: string };
  /** Fan-out runs only: one per task, by index. */
  tasks?: TaskResult[];
}

/** One event of a run (agent `RunEvent`), relayed unchanged. */
export type RunEvent =
  | { kind: 'queued'; task?: number; position: number }
  | { kind: 'uploading'; bytesDone: number; bytesTotal: number; to?: 'engine' }
  | { kind: 'building'; step: number; steps: number; instruction: string; cached: boolean }
  | { kind: 'starting'; start: StartKind; image: string; cachedSteps: number; steps: number }
  | { kind: 'running'; task?: number; startedAt: string }
  | { kind: 'log'; task?: number; stream: LogStream; time: string; data: string }
  | { kind: 'stats'; task?: number; cpuPercent: number; memoryBytes: number; memoryLimitBytes: number; pids: number }
  | { kind: 'cost'; total: number; billedMs: number; currency: 'USD' }
  | { kind: 'port'; task?: number; port: number; state: 'ready'; ms: number }
  | { kind: 'volume'; state: 'over-quota'; usedBytes: number; quotaBytes: number; message: string }
  | { kind: 'placed'; task?: number; volumes: string[]; node: string; nodeId: string; message: string }
  | { kind: 'idle'; idleMs: number; stopInMs: number; message: string }
  | { kind: 'exec'; task?: number; state: 'started' | 'ended'; time: string; command: string[]; tty: boolean; by: string; exitCode?: number | null; ms?: number }
  | ({ kind: 'exited' } & FinalFields)
  | ({ kind: 'failed'; code: 'upload' | 'build' | 'engine' | 'hardware' | 'timeout' | 'internal' | 'volume'; message: string } & FinalFields)
  | ({ kind: 'cancelled' } & FinalFields);
export type FinalEvent = Extract<RunEvent, { kind: 'exited' | 'failed' | 'cancelled' }>;

// ---------------------------------------------------------------- run panel

/** A run event with the agent's sequence number and the host's receive time. */
export interface SeqEvent {
  seq: number;
  /** Epoch ms when the host received it; the panel times the phases with it until the final event gives exact ones. */
  at: number;
  event: RunEvent;
}

/** What the panel header shows; fixed for the life of the run. */
export interface RunInfo {
  runId: string;
  /** Display name, e.g. the Dockerfile's workspace-relative path. */
  name: string;
  /** Workspace-relative path of the Dockerfile. */
  dockerfile: string;
  /** Name of the agent that runs it, e.g. `local` or a remote agent's name. */
  agent: string;
  /** Hardware as the CodeLens writes it, e.g. `2 vCPU · 4 GiB · $0.09/h`. */
  hardware: string;
  /** Price per hour of that hardware; lets the ticker move smoothly between cost events. */
  hourlyUsd?: number;
  /** ISO time the run was created. */
  createdAt?: string;
}

/** What the host knows about the run when it sends `init`. */
export interface RunSnapshot {
  state: RunState;
  /** Highest event seq the host has; the replay that follows `init` ends there. */
  lastSeq: number;
  final?: FinalEvent;
}

/** A container port forwarded to this machine while the run goes. */
export interface PortView {
  containerPort: number;
  /** Where it is reached here: `http://127.0.0.1:8080`. */
  url: string;
  /** `waiting` until the container's port first accepts a connection; `closed` once the run ended. */
  state: 'waiting' | 'ready' | 'closed';
  /** From the container's start to ready. */
  readyMs?: number;
}

export type ToPanel =
  /**
   * Answer to `ready`: resets the panel unless `haveSeq` was > 0; events with seq > haveSeq follow. `trace`:
   * the host measures (BYTENITE_RUN_TRACE), so the panel reports when it showed each run's first line.
   */
  | { type: 'init'; run: RunInfo; snapshot: RunSnapshot; trace?: boolean }
  /** A batch of run events, oldest first, in seq order. */
  | { type: 'events'; runId: string; events: SeqEvent[] }
  /** The run's end, for a run whose events the host no longer has (history, restart). */
  | { type: 'summary'; runId: string; final: FinalEvent }
  /** The connection to the agent changed; `message` says what the user can do. */
  | { type: 'connection'; state: 'connected' | 'reconnecting' | 'disconnected'; message?: string }
  /** Output files were fetched (or not): enables Open Outputs. */
  | { type: 'outputs'; runId: string; available: boolean }
  /** The run's forwarded ports and their state (sent whenever one changes). */
  | { type: 'ports'; runId: string; ports: PortView[] }
  /** Run on Save of the run's Dockerfile: the toggle's state and the earlier runs of the watch (after `init`, and on change). */
  | ({ type: 'watch' } & WatchPanelState);

/** A run of a watch before the one the panel shows, and why it ended. */
export interface WatchEarlierRun {
  runId: string;
  /** `stopped: src/app.py changed`, `exit code 0`, `failed: …`. */
  ended: string;
  durationMs?: number;
  costUsd?: number;
}

export interface WatchPanelState {
  runId: string;
  /** Whether Run on Save is on for the run's Dockerfile. */
  on: boolean;
  /** Oldest first. */
  earlier: WatchEarlierRun[];
}

export type FromPanel =
  /** The script is listening; `runId` is the saved state's, `haveSeq` as in step 2 above. */
  | { type: 'ready'; runId?: string; haveSeq: number }
  /** Stop button. */
  | { type: 'stop'; runId: string }
  /** Run Again button: same Dockerfile, same hardware. */
  | { type: 'runAgain'; runId: string }
  /** Open Outputs button: reveal the files the run returned. */
  | { type: 'openOutputs'; runId: string }
  /** Copy button: put this text (the shown log lines, ANSI stripped) on the clipboard. */
  | { type: 'copy'; text: string; lines: number }
  /** Open button of a forwarded port. */
  | { type: 'openPort'; runId: string; containerPort: number }
  /** Open Shell button: a VS Code terminal inside the running container (`bytenite.openShell`). */
  | { type: 'openShell'; runId: string }
  /** Watch button: turns Run on Save on or off for the run's Dockerfile. */
  | { type: 'toggleWatch'; runId: string }
  /** Only when `init` asked for it: when the run's first line reached this page and was on screen. */
  | { type: 'trace'; runId: string; marks: PanelMarks };

/** Epoch ms on the page's clock (`performance.timeOrigin + performance.now()`). */
export interface PanelMarks {
  /** Run Again clicked in this page, when that started the run. */
  clickAt?: number;
  /** The `events` message with the run's first container line arrived. */
  receivedAt: number;
  /** The frame that inserted its row ran its callbacks; that frame was rendered (painted). */
  insertedAt: number;
  paintedAt: number;
}

/** What the panel keeps in `setState` (bounded: at most PANEL_SAVED_LINES log lines). */
export interface PanelSavedState {
  v: 1;
  runId: string;
  run?: RunInfo;
  /** Highest seq held in full, 0 when lines were trimmed (the host then replays everything). */
  haveSeq: number;
  /** Opaque to the host. */
  view: unknown;
}

// ---------------------------------------------------------------- sidebar

export interface AgentView {
  name: string;
  kind: 'local' | 'remote';
  /** ws:// or wss:// URL; shown for remote agents. */
  url?: string;
  state: 'connected' | 'connecting' | 'disconnected' | 'stopped' | 'error';
  /** Why, when not connected, and what to do. */
  message?: string;
  /** The agent's disk use, part by part against each budget (as its last hardware reply gave it). */
  disk?: DiskPartView[];
  /** This tenant's named volumes on the agent (agent `VolumeSummary`, as its last `volume.list` gave them). */
  volumes?: VolumeView[];
}

export interface VolumeView {
  name: string;
  sizeBytes: number;
  /** USD a month its size costs at the agent's storage price. */
  monthlyCost: number;
  lastUsedAt?: string;
  /** Run ids mounting it now. */
  inUse: string[];
}

export interface DiskPartView {
  /** `outputs`, `images`, `build-cache`, `journal`, `context-store`. */
  name: string;
  usedBytes: number;
  budgetBytes: number;
  /** The `bytenite agent` flag that sets the budget, and more about the part. */
  flag: string;
  note?: string;
}

export interface DockerfileView {
  /** Stable key the host understands (e.g. the file URI); echoed back in `runDockerfile`. */
  id: string;
  /** Workspace-relative path shown to the user. */
  path: string;
  /** The chosen hardware, as the CodeLens shows it. */
  hardware?: string;
}

export interface RunRowView {
  runId: string;
  name: string;
  state: RunState;
  start?: StartKind;
  /** ISO time the run was created; the list is sorted newest first on it. */
  createdAt: string;
  /** Container run time; for a run in progress, the time so far. */
  durationMs?: number;
  costUsd?: number;
  exitCode?: number | null;
  oomKilled?: boolean;
}

/** A schedule of the selected agent, as the sidebar's Schedules section shows it (agent `ScheduleSummary`, trimmed). */
export interface ScheduleRowView {
  name: string;
  cron: string;
  timezone: string;
  paused: boolean;
  /** The next times (ISO UTC), soonest first; empty while paused. */
  next: string[];
  /** The latest firing: `exited 0`, `skipped`, `refused`, `running`… with its run and why. */
  last?: { time: string; result: string; exitCode?: number | null; runId?: string; reason?: string };
  /** Runs started, times skipped and USD spent to date. */
  runCount: number;
  skipped: number;
  costUsd: number;
  /** Its past runs (the agent's runs named `schedule NAME`), newest first; each opens its run panel. */
  runs: RunRowView[];
}

/** An endpoint of the selected agent, as the sidebar's Endpoints section shows it. */
export interface EndpointRowView {
  name: string;
  /** Its address on the agent (`http://AGENT/e/NAME/`). */
  url: string;
  /** `starting` while an instance starts, else `serving` with ready instances, else `idle` (at zero). */
  state: 'idle' | 'starting' | 'serving';
  /** `idle`, `starting`, `serving 2`. */
  stateText: string;
  /** Requests since the agent started (what the agent counts). */
  requests: number;
  /** Requests since local midnight on the agent, from agents that count them. */
  requestsToday?: number;
  /** Held, waiting for an instance. */
  queued: number;
  /** USD since local midnight on the agent, when it counts cost. */
  costToday?: number;
  public: boolean;
}

export interface SidebarState {
  agent: AgentView | null;
  /** The selected agent's schedules; absent when it keeps none (not connected, or an agent without them). */
  schedules?: ScheduleRowView[];
  /** The selected agent's endpoints; absent when it serves none (not connected, or an agent without them). */
  endpoints?: EndpointRowView[];
  dockerfiles: DockerfileView[];
  /** Any order; the view sorts newest first and sums today/overall costs from them. */
  runs: RunRowView[];
  /** False in an untrusted workspace: run buttons are disabled. */
  trusted: boolean;
}

export type ToSidebar =
  /** The whole sidebar state. */
  | { type: 'state'; state: SidebarState };

export type FromSidebar =
  /** The script is listening; send `state`. */
  | { type: 'ready' }
  /** Run button of a Dockerfile row. */
  | { type: 'runDockerfile'; id: string }
  /** A run row was clicked: open (or reveal) its run panel. */
  | { type: 'openRun'; runId: string }
  /** The agent row was clicked: the `bytenite.selectAgent` command. */
  | { type: 'selectAgent' }
  /** Start the local agent (shown when it is stopped). */
  | { type: 'startLocalAgent' }
  /** A schedule row's buttons: run it now, pause or resume it, remove it (the host asks first). */
  | { type: 'scheduleAction'; action: 'run' | 'pause' | 'resume' | 'remove'; name: string }
  /** A volume row's remove button (the host asks first). */
  | { type: 'removeVolume'; name: string }
  /** An endpoint row's buttons: the browser at it, its panel, undeploy (the host asks first). */
  | { type: 'openEndpoint'; name: string }
  | { type: 'endpointLogs'; name: string }
  | { type: 'undeployEndpoint'; name: string };

// ---------------------------------------------------------------- endpoint panel
//
// One panel per endpoint. The script posts `ready`; the host answers `init`, the latest requests of the
// journal (`requests`, oldest first), then each new one as it ends, the endpoint's instances and cost every
// few seconds (`status`), and the log lines of each instance (an instance is a run: its events).

/** How a request's instance woke, for the request that woke it (agent `WakePhases`). */
export interface WakePhases { start: StartKind; admitMs: number; startMs: number; readyMs: number }

/** One request through the endpoint (agent `RequestRecord`): never its headers, query or body. */
export interface RequestRecord {
  seq: number; time: string; requestId: string; method: string; path: string; status: number;
  bytesIn: number; bytesOut: number; heldMs: number; firstByteMs?: number; totalMs: number;
  instance?: string; wake?: WakePhases; error?: string;
}

export interface EndpointInstanceView {
  runId: string; state: 'starting' | 'ready' | 'stopping'; inFlight: number; start?: StartKind; startedAt?: string;
}

export interface EndpointStatusView {
  /** False once the endpoint is gone (undeployed elsewhere). */
  exists: boolean;
  stateText: string;
  instances: EndpointInstanceView[];
  queued: number;
  requests: number;
  costToday?: number;
  costTotal?: number;
  /** `each wake keeps 1 vCPU · 2 GiB up 60 s after the last request: $0.0021`. */
  idleText?: string;
}

export interface EndpointHeaderView {
  name: string;
  url: string;
  agent: string;
  /** `0..4 instances · idle 60 s · 32 per instance · port 8000 · needs the agent token`. */
  settings: string;
  hardware: string;
}

export interface EndpointLogLine { runId: string; stream: LogStream; time: string; data: string }

export type ToEndpointPanel =
  | { type: 'init'; endpoint: EndpointHeaderView }
  /** Requests, oldest first; the panel keeps each seq once. */
  | { type: 'requests'; requests: RequestRecord[] }
  | { type: 'status'; status: EndpointStatusView }
  /** Lines the instances printed, in the order they came. */
  | { type: 'logs'; lines: EndpointLogLine[] };

export type FromEndpointPanel =
  | { type: 'ready' }
  | { type: 'open' }
  | { type: 'undeploy' };

/** Log lines kept in the panel's saved state; the host replays the rest. */
export const PANEL_SAVED_LINES = 2000;
