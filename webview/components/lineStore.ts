/**
 * The log as lines: splits the agent's chunks (several lines or part of one) per stream, keeps ANSI state
 * per stream, and holds the plain text of each line for search, copy and the screen. Bounded: past
 * `maxLines` the oldest lines are dropped in blocks (one splice per block, not one per line).
 */
import { type AnsiStyle, type Segment, isPlain, parseLine } from './ansi';
import type { LogStream } from '../protocol';

export interface LogLine {
  /** Plain text (escapes removed). */
  text: string;
  stream: LogStream;
  /** Epoch ms of the chunk the line started in. */
  time: number;
  /** Styled pieces, when the line has more than one run (most lines have one). */
  segments: Segment[] | null;
  /** The style of the whole line, when it is one styled run. */
  style: AnsiStyle | null;
}

/** What may still change of the last line: its stream sent no newline yet. */
interface OpenLine {
  line: LogLine;
  raw: string;
  startStyle: AnsiStyle | null;
}

export interface LineStoreSnapshot {
  lines: LogLine[];
  dropped: number;
  styles: Partial<Record<LogStream, AnsiStyle | null>>;
  open: { raw: string; startStyle: AnsiStyle | null } | null;
}

export type LineChange =
  /** Lines from `from` (absolute index) on are new; `reopened` says the last existing line changed too. */
  { appended: number; reopened: boolean };

export class LineStore {
  lines: LogLine[] = [];
  /** Lines dropped from the front; line `i` of `lines` is line number `dropped + i + 1` of the log. */
  dropped = 0;
  private styles: Partial<Record<LogStream, AnsiStyle | null>> = {};
  private open: OpenLine | null = null;

  constructor(readonly maxLines = 500_000, readonly dropBlock = Math.max(1, Math.floor(maxLines / 10))) {}

  get length(): number {
    return this.lines.length;
  }

  /**
   * Adds one chunk. Returns how many lines were added and whether the last existing line was extended
   * (a stream continuing a line it left open). Call `trim()` afterwards to enforce the bound.
   */
  append(stream: LogStream, data: string, time: number): LineChange {
    let start = 0;
    let appended = 0;
    let reopened = false;
    // A partial line continues only while it is still the last line and its stream goes on; otherwise it
    // stays as it is and the continuation starts a new line (interleaved streams do not mix into one line).
    if (this.open && (this.open.line.stream !== stream || this.lines[this.lines.length - 1] !== this.open.line)) {
      this.open = null;
    }
    while (start <= data.length) {
      const nl = data.indexOf('\n', start);
      const end = nl === -1 ? data.length : nl;
      const piece = data.slice(start, end);
      if (nl === -1 && piece === '') break; // the chunk ended with a newline
      if (this.open) {
        const o = this.open;
        o.raw += piece;
        this.setLine(o.line, o.raw, o.startStyle, stream);
        reopened = true;
      } else {
        const startStyle = this.styles[stream] ?? null;
        // Every field set up front: one object shape for all lines keeps them compact and fast.
        const line: LogLine = { text: '', stream, time, segments: null, style: null };
        this.setLine(line, piece, startStyle, stream);
        this.lines.push(line);
        appended++;
        if (nl === -1) this.open = { line, raw: piece, startStyle };
      }
      if (nl === -1) break;
      this.open = null;
      start = nl + 1;
    }
    return { appended, reopened };
  }

  /** Drops the oldest lines past the bound; returns how many went (0 almost always). */
  trim(): number {
    if (this.lines.length <= this.maxLines) return 0;
    const n = this.lines.length - this.maxLines + this.dropBlock;
    this.lines.splice(0, n);
    this.dropped += n;
    return n;
  }

  private setLine(line: LogLine, raw: string, startStyle: AnsiStyle | null, stream: LogStream): void {
    if (isPlain(raw)) {
      line.text = raw;
      line.segments = null;
      line.style = startStyle;
      this.styles[stream] = startStyle;
      return;
    }
    const { segments, style } = parseLine(raw, startStyle);
    this.styles[stream] = style;
    if (segments.length <= 1) {
      line.text = segments[0]?.text ?? '';
      line.style = segments[0]?.style ?? null;
      line.segments = null;
    } else {
      let text = '';
      for (const seg of segments) text += seg.text;
      line.text = text;
      line.style = null;
      line.segments = segments;
    }
  }

  /** The last `max` lines and the parser state, for the webview's saved state. */
  snapshot(max: number): LineStoreSnapshot {
    const lines = this.lines.slice(-max);
    const open = this.open && lines.includes(this.open.line) ? { raw: this.open.raw, startStyle: this.open.startStyle } : null;
    return { lines, dropped: this.dropped + this.lines.length - lines.length, styles: { ...this.styles }, open };
  }

  static restore(s: LineStoreSnapshot, maxLines?: number): LineStore {
    const store = new LineStore(maxLines);
    store.lines = s.lines;
    store.dropped = s.dropped;
    store.styles = { ...s.styles };
    const last = s.lines[s.lines.length - 1];
    if (s.open && last) store.open = { line: last, raw: s.open.raw, startStyle: s.open.startStyle };
    return store;
  }
}

/** Pieces of a line to draw: its segments, or one run. */
export function lineSegments(line: LogLine): Segment[] {
  return line.segments ?? [{ text: line.text, style: line.style }];
}
