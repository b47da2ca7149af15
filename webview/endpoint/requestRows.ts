/**
 * The words of the endpoint panel's request table, from the agent's request records: one row per request,
 * the latest first, at most MAX_ROWS; a request that woke an instance says so with the wake's parts.
 */
import { formatBytes, formatClock, formatDuration } from '../components/format';
import type { RequestRecord } from '../protocol';

export const MAX_ROWS = 1000;

export interface RequestRowText {
  seq: number;
  time: string;
  method: string;
  path: string;
  status: string;
  /** `ok` 2xx/3xx/101, `client` 4xx, `error` 5xx or the client left (0). */
  tone: 'ok' | 'client' | 'error';
  duration: string;
  /** Held, first byte and bytes, as a short line. */
  detail: string;
  /** `cold wake: admit 10 ms · start 499 ms · ready 8 ms`, when this request woke its instance. */
  wake?: string;
  wakeKind?: 'hot' | 'warm' | 'cold';
  error?: string;
  label: string;
}

export function requestRowText(r: RequestRecord): RequestRowText {
  const status = r.status === 0 ? 'left' : String(r.status);
  const tone = r.status === 0 || r.status >= 500 ? 'error' : r.status >= 400 ? 'client' : 'ok';
  const duration = formatDuration(r.totalMs);
  const detail = [`held ${formatDuration(r.heldMs)}`, r.firstByteMs !== undefined ? `first byte ${formatDuration(r.firstByteMs)}` : undefined,
    `${formatBytes(r.bytesOut)} out`].filter(Boolean).join(' · ');
  const wake = r.wake ? `${r.wake.start} wake: admit ${r.wake.admitMs} ms · start ${r.wake.startMs} ms · ready ${r.wake.readyMs} ms` : undefined;
  const t = Date.parse(r.time);
  const time = Number.isNaN(t) ? r.time : formatClock(t);
  const label = [time, r.method, r.path, status, duration, wake, r.error].filter(Boolean).join(', ');
  return { seq: r.seq, time, method: r.method, path: r.path, status, tone, duration, detail, ...(wake ? { wake, wakeKind: r.wake!.start } : {}), ...(r.error ? { error: r.error } : {}), label };
}

/** Adds `incoming` to `held` (by seq, each once) and returns the rows to show: latest first, at most MAX_ROWS. */
export function mergeRequests(held: Map<number, RequestRecord>, incoming: RequestRecord[]): RequestRecord[] {
  for (const r of incoming) held.set(r.seq, r);
  const all = [...held.values()].sort((a, b) => b.seq - a.seq);
  if (all.length > MAX_ROWS) for (const r of all.splice(MAX_ROWS)) held.delete(r.seq);
  return all;
}
