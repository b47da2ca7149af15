/** What the sidebar derives from the host's state: run order, cost totals, and the words on each run row. */
import { formatBytes, formatDuration, formatUsd } from '../components/format';
import type { EndpointRowView, RunRowView, VolumeView } from '../protocol';

/** Newest first by creation time; runs with unreadable times go last, in the order given. */
export function sortRuns(runs: RunRowView[]): RunRowView[] {
  const t = (r: RunRowView) => {
    const ms = Date.parse(r.createdAt);
    return Number.isNaN(ms) ? -Infinity : ms;
  };
  return runs.map((r, i) => ({ r, i, t: t(r) })).sort((a, b) => b.t - a.t || a.i - b.i).map((x) => x.r);
}

/** Cost today (local calendar day of `now`) and overall, over the runs given. */
export function costTotals(runs: RunRowView[], now: Date): { today: number; overall: number } {
  const dayStart = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  let today = 0;
  let overall = 0;
  for (const r of runs) {
    const c = r.costUsd ?? 0;
    overall += c;
    if (Date.parse(r.createdAt) >= dayStart) today += c;
  }
  return { today, overall };
}

export type RowTone = 'ok' | 'error' | 'warning' | 'active';

export interface RunRowText {
  status: string;
  tone: RowTone;
  duration: string;
  cost: string;
  /** The whole row in one sentence, for screen readers and tooltips. */
  label: string;
}

export function runRowText(r: RunRowView): RunRowText {
  let status: string;
  let tone: RowTone;
  switch (r.state) {
    case 'exited':
      if (r.oomKilled) [status, tone] = ['out of memory', 'error'];
      else if (r.exitCode === 0) [status, tone] = ['exit 0', 'ok'];
      else [status, tone] = [`exit ${r.exitCode ?? '?'}`, 'error'];
      break;
    case 'failed':
      [status, tone] = [r.oomKilled ? 'out of memory' : 'failed', 'error'];
      break;
    case 'cancelled':
      [status, tone] = ['stopped', 'warning'];
      break;
    default:
      [status, tone] = [r.state, 'active'];
  }
  const duration = r.durationMs !== undefined ? formatDuration(r.durationMs) : '';
  const cost = r.costUsd !== undefined ? formatUsd(r.costUsd) : '';
  const label = [r.name, status, r.start && `${r.start} start`, duration, cost].filter(Boolean).join(', ');
  return { status, tone, duration, cost, label };
}

/** A volume row: its size, and what it costs a month or which runs use it; the whole in one sentence. */
export function volumeRowText(v: VolumeView): { size: string; detail: string; label: string } {
  const size = formatBytes(v.sizeBytes);
  const cost = `${formatUsd(v.monthlyCost)}/month`;
  const detail = v.inUse.length ? `in use by ${v.inUse.join(', ')}` : cost;
  return { size, detail, label: [`Volume ${v.name}`, size, cost, v.inUse.length ? `in use by ${v.inUse.join(', ')}` : 'not in use'].join(', ') };
}

/** An endpoint row: requests today (or since the agent started, from an agent that does not count days), those held, and cost today; the whole in one sentence. */
export function endpointRowText(e: EndpointRowView): { detail: string; label: string } {
  const today = e.requestsToday !== undefined;
  const n = today ? e.requestsToday! : e.requests;
  const requests = `${n.toLocaleString('en-US')} req${today ? ' today' : ''}${e.queued ? ` · ${e.queued} held` : ''}`;
  const cost = e.costToday !== undefined ? `${formatUsd(e.costToday)} today` : undefined;
  const detail = [requests, cost].filter(Boolean).join(' · ');
  const said = today ? `${n} requests today` : `${n} requests since the agent started`;
  const label = [`Endpoint ${e.name}`, e.stateText, said, e.queued ? `${e.queued} held` : '', cost, e.url].filter(Boolean).join(', ');
  return { detail, label };
}
