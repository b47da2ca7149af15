/**
 * What the run panel knows about its run, folded from the run's events in seq order. Log text is not kept
 * here (it goes to the LineStore); everything else the panel shows is derived from this plain object,
 * which is also what the panel saves for restore.
 */
import type { FinalEvent, RunEvent, RunState, SeqEvent, StartKind } from '../protocol';

export type PhaseName = 'queued' | 'upload' | 'build' | 'start' | 'running' | 'exit';
export const PHASES: readonly PhaseName[] = ['queued', 'upload', 'build', 'start', 'running', 'exit'];

/** CPU and memory samples for the chart, oldest first, at most STATS_KEPT. */
export interface StatsSeries {
  /** Epoch seconds (uPlot's x unit). */
  t: number[];
  cpuPercent: number[];
  memoryMiB: number[];
  memoryLimitMiB: number;
}
export const STATS_KEPT = 900; // 15 minutes at one sample a second

export interface RunModel {
  runId: string;
  /** Highest seq applied; events at or below it are duplicates. */
  seq: number;
  state: RunState;
  /** Host receive time of the first event of each phase, for live phase times. */
  phaseAt: Partial<Record<PhaseName, number>>;
  queuePosition?: number;
  upload?: { bytesDone: number; bytesTotal: number };
  /** BuildKit: the context files the engine asked the agent for during the build, and the bytes sent. */
  engineUpload?: { bytesDone: number; bytesTotal: number };
  build?: { step: number; steps: number; instruction: string; cachedSeen: number };
  start?: { kind: StartKind; image: string; cachedSteps: number; steps: number };
  /** Last cost event and when it came; `ratePerMs` from the last two, for the ticker. */
  cost?: { total: number; billedMs: number; at: number; ratePerMs?: number };
  stats: StatsSeries;
  final?: FinalEvent;
  /** Tasks of a fan-out run seen so far (highest `task` index + 1); absent on a run of one task. */
  taskCount?: number;
}

export function newRunModel(runId: string): RunModel {
  return { runId, seq: 0, state: 'queued', phaseAt: {}, stats: { t: [], cpuPercent: [], memoryMiB: [], memoryLimitMiB: 0 } };
}

const PHASE_OF: Partial<Record<RunEvent['kind'], PhaseName>> = {
  queued: 'queued', uploading: 'upload', building: 'build', starting: 'start', running: 'running',
  exited: 'exit', failed: 'exit', cancelled: 'exit',
};
const STATE_OF: Partial<Record<RunEvent['kind'], RunState>> = {
  queued: 'queued', uploading: 'uploading', building: 'building', starting: 'starting', running: 'running',
  exited: 'exited', failed: 'failed', cancelled: 'cancelled',
};

export type Applied = 'duplicate' | 'log' | 'changed';

/** Folds one event into the model (in place: a 100,000-event replay should not copy it 100,000 times). */
export function applyEvent(m: RunModel, { seq, at, event: e }: SeqEvent): Applied {
  if (seq <= m.seq) return 'duplicate';
  m.seq = seq;
  if ('task' in e && e.task !== undefined && e.task + 1 > (m.taskCount ?? 0)) m.taskCount = e.task + 1;
  if (e.kind === 'log') return 'log';
  // The engine's pull of the context comes during the build: a detail of the build phase, not a phase.
  const toEngine = e.kind === 'uploading' && e.to === 'engine';
  const phase = toEngine ? undefined : PHASE_OF[e.kind];
  if (phase && m.phaseAt[phase] === undefined) m.phaseAt[phase] = at;
  // A late non-final event (e.g. the last stats) does not take a finished run back to running.
  // Nor does one task of a fan-out run being queued take a run that already started back to queued.
  const state = toEngine ? undefined : STATE_OF[e.kind];
  const taskQueued = e.kind === 'queued' && e.task !== undefined && m.state !== 'queued';
  if (state && !m.final && !taskQueued) m.state = state;
  switch (e.kind) {
    case 'queued':
      if (!taskQueued) m.queuePosition = e.position;
      break;
    case 'uploading':
      if (toEngine) m.engineUpload = { bytesDone: e.bytesDone, bytesTotal: e.bytesTotal };
      else m.upload = { bytesDone: e.bytesDone, bytesTotal: e.bytesTotal };
      break;
    case 'building':
      m.build = { step: e.step, steps: e.steps, instruction: e.instruction, cachedSeen: (m.build?.cachedSeen ?? 0) + (e.cached ? 1 : 0) };
      break;
    case 'starting':
      m.start = { kind: e.start, image: e.image, cachedSteps: e.cachedSteps, steps: e.steps };
      break;
    case 'stats':
      pushStats(m.stats, at, e.cpuPercent, e.memoryBytes, e.memoryLimitBytes);
      break;
    case 'cost': {
      const prev = m.cost;
      const ratePerMs = prev && at > prev.at && e.total >= prev.total ? (e.total - prev.total) / (at - prev.at) : prev?.ratePerMs;
      m.cost = { total: e.total, billedMs: e.billedMs, at, ratePerMs };
      break;
    }
    case 'exited':
    case 'failed':
    case 'cancelled':
      setFinal(m, e);
      break;
  }
  return 'changed';
}

/** The final event, from the events or from a `summary` (a run whose events are gone). */
export function setFinal(m: RunModel, f: FinalEvent): void {
  m.final = f;
  if (f.tasks && f.tasks.length > (m.taskCount ?? 0)) m.taskCount = f.tasks.length;
  m.state = f.kind;
  m.start ??= { kind: f.start, image: '', cachedSteps: f.cachedSteps, steps: f.steps };
}

function pushStats(s: StatsSeries, at: number, cpu: number, memBytes: number, limitBytes: number): void {
  s.t.push(at / 1000);
  s.cpuPercent.push(cpu);
  s.memoryMiB.push(memBytes / 1048576);
  s.memoryLimitMiB = limitBytes / 1048576;
  if (s.t.length > STATS_KEPT) {
    // Drop in blocks of 10%: one splice per 90 samples instead of a shift per sample.
    const n = s.t.length - STATS_KEPT + Math.floor(STATS_KEPT / 10);
    s.t.splice(0, n);
    s.cpuPercent.splice(0, n);
    s.memoryMiB.splice(0, n);
  }
}

export const isFinished = (m: RunModel): boolean => m.final !== undefined;
