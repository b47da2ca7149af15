/**
 * The phase list (queued, upload, build, start, running, exit) with a time and a status each. While the
 * run goes, times come from when the host received each phase's first event; once the final event is
 * there, from the agent's own `phases`, which are exact.
 */
import { formatBytes, formatDuration } from '../components/format';
import { type PhaseName, PHASES, type RunModel } from './runModel';
import type { FinalEvent } from '../protocol';

export type PhaseStatus = 'pending' | 'active' | 'done' | 'skipped' | 'failed';

export interface PhaseRow {
  phase: PhaseName;
  label: string;
  status: PhaseStatus;
  /** Time spent, when known. */
  ms?: number;
  /** A few words: queue position, bytes uploaded, build step, warm/cold, exit code. */
  detail?: string;
}

const LABELS: Record<PhaseName, string> = {
  queued: 'Queued', upload: 'Upload', build: 'Build', start: 'Start', running: 'Running', exit: 'Exit',
};

/** The phase a failure happened in, from its code. */
function failedPhase(f: Extract<FinalEvent, { kind: 'failed' }>, m: RunModel): PhaseName {
  switch (f.code) {
    case 'upload': return 'upload';
    case 'build': return 'build';
    case 'timeout': return 'running';
    default: {
      // engine / hardware / internal: the last phase that began.
      const begun = PHASES.filter((p) => p !== 'exit' && m.phaseAt[p] !== undefined);
      return begun[begun.length - 1] ?? 'start';
    }
  }
}

function detailOf(p: PhaseName, m: RunModel): string | undefined {
  switch (p) {
    case 'queued':
      return m.queuePosition !== undefined && !m.phaseAt.upload && !m.phaseAt.build && !m.phaseAt.start ? `position ${m.queuePosition}` : undefined;
    case 'upload':
      return m.upload ? `${formatBytes(m.upload.bytesDone)} of ${formatBytes(m.upload.bytesTotal)}` : undefined;
    case 'build': {
      const sent = m.engineUpload ? `${formatBytes(m.engineUpload.bytesDone)} of ${formatBytes(m.engineUpload.bytesTotal)} sent to the engine` : undefined;
      if (m.final) return m.final.steps > 0 ? `${m.final.steps} steps, ${m.final.cachedSteps} cached${sent ? `, ${sent}` : ''}` : undefined;
      const step = m.build ? `step ${m.build.step}/${m.build.steps}${m.build.cachedSeen ? `, ${m.build.cachedSeen} cached` : ''}` : undefined;
      return [step, sent].filter(Boolean).join(' · ') || undefined;
    }
    case 'start':
      return m.start?.kind;
    default:
      return undefined;
  }
}

export function phaseRows(m: RunModel, now: number): PhaseRow[] {
  const f = m.final;
  const rows: PhaseRow[] = [];
  if (f) {
    const ms: Record<Exclude<PhaseName, 'exit'>, number> = {
      queued: f.phases.queuedMs, upload: f.phases.uploadMs, build: f.phases.buildMs, start: f.phases.startMs, running: f.phases.runMs,
    };
    const failedAt = f.kind === 'failed' ? failedPhase(f, m) : undefined;
    let reachedEnd = false; // phases after a failure were never reached
    for (const p of PHASES) {
      if (p === 'exit') {
        rows.push({ phase: p, label: LABELS[p], status: f.kind === 'exited' && f.exitCode === 0 ? 'done' : 'failed', detail: exitDetail(f) });
        continue;
      }
      const warmSkip = f.start !== 'cold' && (p === 'upload' || p === 'build');
      let status: PhaseStatus;
      if (reachedEnd) status = 'pending';
      else if (p === failedAt) status = 'failed';
      else if (warmSkip) status = 'skipped';
      else if (ms[p] > 0 || m.phaseAt[p] !== undefined) status = 'done';
      else status = p === 'queued' ? 'done' : 'skipped';
      if (p === failedAt) reachedEnd = true;
      const row: PhaseRow = { phase: p, label: LABELS[p], status, detail: warmSkip ? `${f.start}: not needed` : detailOf(p, m) };
      if (status === 'done' || status === 'failed') row.ms = ms[p];
      rows.push(row);
    }
    return rows;
  }
  // Live: a phase runs from its first event to the first event of any later phase (or now).
  const order = PHASES;
  for (let i = 0; i < order.length; i++) {
    const p = order[i];
    const began = m.phaseAt[p];
    let next: number | undefined;
    for (let j = i + 1; j < order.length && next === undefined; j++) next = m.phaseAt[order[j]];
    const row: PhaseRow = { phase: p, label: LABELS[p], status: 'pending', detail: detailOf(p, m) };
    if (began !== undefined) {
      row.status = next === undefined ? 'active' : 'done';
      row.ms = Math.max(0, (next ?? now) - began);
    } else if (next !== undefined) {
      row.status = 'skipped';
      if (m.start && m.start.kind !== 'cold' && (p === 'upload' || p === 'build')) row.detail = `${m.start.kind}: not needed`;
    }
    if (p === 'exit' && row.status === 'active') row.status = 'done';
    rows.push(row);
  }
  return rows;
}

function exitDetail(f: FinalEvent): string {
  if (f.oomKilled) return `out of memory (exit ${f.exitCode ?? '–'})`;
  if (f.kind === 'cancelled') return f.exitCode === null ? 'stopped' : `stopped (exit ${f.exitCode})`;
  if (f.kind === 'failed') return `failed: ${f.code}`;
  return `exit ${f.exitCode}`;
}

export const phaseTimeText = (r: PhaseRow): string =>
  r.ms !== undefined ? formatDuration(r.ms) : r.status === 'skipped' ? 'skipped' : '–';
