/** How numbers read in the panel and sidebar: cost, durations, bytes, clock times. */

/**
 * US dollars with enough digits to see a short run's cost move: runs cost fractions of a cent, so below
 * one cent four significant digits are kept, e.g. `$0.000412`.
 */
export function formatUsd(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return '$0.00';
  if (n >= 100) return `$${n.toFixed(2)}`;
  if (n >= 0.01) return `$${n.toFixed(4)}`;
  const digits = Math.min(8, 3 - Math.floor(Math.log10(n)));
  return `$${n.toFixed(digits)}`;
}

/** A duration for people: `850 ms`, `12.3 s`, `3m 05s`, `2h 04m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** Bytes in binary units: `512 B`, `1.5 KiB`, `3.0 GiB`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Local clock time with milliseconds, for log timestamps: `14:03:07.250`. */
export function formatClock(epochMs: number): string {
  const d = new Date(epochMs);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** `1,234` with the user's grouping. */
export const formatCount = (n: number): string => n.toLocaleString('en-US');
