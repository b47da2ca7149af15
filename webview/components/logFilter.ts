/**
 * The log filter: a case-insensitive substring, or a regular expression written as `/.../flags`, plus the
 * streams to show. Pure, so the view can rebuild its index of matching lines off any event.
 */
import type { LogStream } from '../protocol';

export interface FilterSpec {
  query: string;
  streams: ReadonlySet<LogStream>;
}

export interface CompiledFilter {
  /** True when every line passes (no query, all streams): the view then skips the index. */
  all: boolean;
  /** Set when the query is a regex that does not compile; the filter then matches nothing. */
  error?: string;
  test(text: string, stream: LogStream): boolean;
  /** [start, end) ranges of matches in `text`, for highlighting. */
  ranges(text: string): [number, number][];
}

export const ALL_STREAMS: ReadonlySet<LogStream> = new Set<LogStream>(['stdout', 'stderr', 'build']);

const MAX_RANGES = 100; // a line of 10,000 "a"s filtered by "a" should not make 10,000 <mark>s

export function compileFilter(spec: FilterSpec): CompiledFilter {
  const everyStream = ALL_STREAMS.size === spec.streams.size && [...ALL_STREAMS].every((s) => spec.streams.has(s));
  const q = spec.query;
  if (q === '') {
    return { all: everyStream, test: (_t, s) => spec.streams.has(s), ranges: () => [] };
  }
  const re = /^\/(.+)\/([a-z]*)$/.exec(q);
  if (re) {
    let rx: RegExp;
    try {
      // Global for ranges; sticky/global flags from the user would break `test`, so they are dropped.
      rx = new RegExp(re[1], re[2].replace(/[gy]/g, '') + 'g');
    } catch (err) {
      return { all: false, error: `Not a valid regular expression: ${(err as Error).message}`, test: () => false, ranges: () => [] };
    }
    return {
      all: false,
      test: (t, s) => {
        if (!spec.streams.has(s)) return false;
        rx.lastIndex = 0;
        return rx.test(t);
      },
      ranges: (t) => {
        const out: [number, number][] = [];
        rx.lastIndex = 0;
        for (let m = rx.exec(t); m && out.length < MAX_RANGES; m = rx.exec(t)) {
          if (m[0] === '') { rx.lastIndex++; continue; }
          out.push([m.index, m.index + m[0].length]);
        }
        return out;
      },
    };
  }
  const needle = q.toLowerCase();
  // Lower-casing can change the length of some characters (e.g. "İ"); then offsets are searched in the
  // original with a case-insensitive regex instead.
  const escaped = new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi');
  return {
    all: false,
    test: (t, s) => spec.streams.has(s) && t.toLowerCase().includes(needle),
    ranges: (t) => {
      const out: [number, number][] = [];
      const lower = t.toLowerCase();
      if (lower.length === t.length) {
        for (let i = lower.indexOf(needle); i !== -1 && out.length < MAX_RANGES; i = lower.indexOf(needle, i + needle.length)) {
          out.push([i, i + needle.length]);
        }
        return out;
      }
      escaped.lastIndex = 0;
      for (let m = escaped.exec(t); m && out.length < MAX_RANGES; m = escaped.exec(t)) out.push([m.index, m.index + m[0].length]);
      return out;
    },
  };
}

/** Splits styled pieces at match ranges, so highlights can be drawn over colours. */
export function splitByRanges<T extends { text: string }>(pieces: T[], ranges: [number, number][]): (T & { mark: boolean })[] {
  const out: (T & { mark: boolean })[] = [];
  let offset = 0;
  let r = 0;
  for (const p of pieces) {
    const start = offset;
    const end = offset + p.text.length;
    let pos = start;
    while (pos < end) {
      while (r < ranges.length && ranges[r][1] <= pos) r++;
      const range = ranges[r];
      if (!range || range[0] >= end) {
        out.push({ ...p, text: p.text.slice(pos - start), mark: false });
        pos = end;
      } else if (range[0] > pos) {
        out.push({ ...p, text: p.text.slice(pos - start, range[0] - start), mark: false });
        pos = range[0];
      } else {
        const stop = Math.min(range[1], end);
        out.push({ ...p, text: p.text.slice(pos - start, stop - start), mark: true });
        pos = stop;
      }
    }
    offset = end;
  }
  return out;
}
