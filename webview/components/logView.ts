/**
 * The log view: a virtualized list of real text rows (selectable, found by the webview's find widget,
 * read by screen readers), with a toolbar for filter, streams, timestamps, follow-tail and copy.
 *
 * Only the rows on screen (plus a margin) exist in the DOM; a spacer gives the scroller the full height.
 * Appends only mark the view dirty; it redraws at most once per animation frame, so a burst of 10,000
 * lines costs one redraw of ~60 rows, not 10,000 DOM insertions.
 */
import { type AnsiStyle, type Segment, styleClasses } from './ansi';
import { h, setAttr, setText } from './dom';
import { formatClock, formatCount } from './format';
import { type LineChange, type LineStore, type LogLine, lineSegments } from './lineStore';
import { LineIndex, lowerBound } from './lineIndex';
import { ALL_STREAMS, type CompiledFilter, compileFilter, splitByRanges } from './logFilter';
import { isAtBottom, visibleRange } from './virtualWindow';
import type { LogStream } from '../protocol';
import { DEFAULT_LOG_UI, type LogViewUi } from './logViewUi';


interface RowState {
  line: LogLine;
  version: number;
}


export class LogView {
  readonly el: HTMLElement;
  private readonly scroller: HTMLDivElement;
  private readonly spacer: HTMLDivElement;
  private readonly rowsEl: HTMLDivElement;
  private readonly countEl: HTMLSpanElement;
  private readonly followBtn: HTMLElement;
  private readonly filterEl: HTMLElement & { value: string; invalid: boolean };
  private readonly streamsEl: HTMLElement & { value: string };
  private readonly timestampsEl: HTMLElement & { checked: boolean };
  private readonly onlyMatchingEl: HTMLElement & { checked: boolean };
  private readonly emptyEl: HTMLDivElement;

  private store!: LineStore;
  private ui: LogViewUi;
  /** The query, for highlights; `shown` the lines on the list, `hits` the lines the query matches. */
  private filter!: CompiledFilter;
  private shown!: LineIndex;
  private hits: LineIndex | null = null;
  /** Absolute number of the hit the user last jumped to (search mode). */
  private currentHit = -1;
  private rowHeight = 18;
  private newWhileAway = 0;
  private frame = 0;
  /** Bumped when every row must be redrawn (filter, timestamps, a line that grew). */
  private version = 0;
  private readonly rowState = new WeakMap<HTMLElement, RowState>();
  private filterTimer: ReturnType<typeof setTimeout> | undefined;
  private lastScrollTop = 0;
  /** The scrollTop the view itself set last: its scroll event is not the user scrolling. */
  private ownScrollTop = -1;
  /** Called after anything the saved state holds changed. */
  onUiChange: () => void = () => {};
  onCopy: (text: string, lines: number) => void = () => {};

  constructor(store: LineStore, ui: LogViewUi = DEFAULT_LOG_UI) {
    this.ui = { ...ui, streams: [...ui.streams] };
    this.filterEl = h('vscode-textfield', {
      id: 'log-filter', placeholder: 'Filter: text or /regex/', title: 'Filter the lines, or with Only matching off, search them: Enter / Shift+Enter jump between matches', 'aria-label': 'Filter or search log lines', type: 'search',
    }) as unknown as LogView['filterEl'];
    this.streamsEl = h('vscode-single-select', { id: 'log-streams', 'aria-label': 'Streams to show' },
      h('vscode-option', { value: 'all' }, 'All streams'),
      h('vscode-option', { value: 'stdout' }, 'stdout'),
      h('vscode-option', { value: 'stderr' }, 'stderr'),
      h('vscode-option', { value: 'build' }, 'build'),
      h('vscode-option', { value: 'run' }, 'stdout + stderr'),
    ) as unknown as LogView['streamsEl'];
    this.timestampsEl = h('vscode-checkbox', { id: 'log-timestamps', label: 'Timestamps' }) as unknown as LogView['timestampsEl'];
    this.onlyMatchingEl = h('vscode-checkbox', {
      id: 'log-only-matching', label: 'Only matching', title: 'Off: keep every line and jump between matches with Enter / Shift+Enter',
    }) as unknown as LogView['onlyMatchingEl'];
    this.followBtn = h('vscode-button', { id: 'log-follow', title: 'Keep the newest line in view (End)' }, 'Follow');
    const copyBtn = h('vscode-button', { id: 'log-copy', secondary: true, title: 'Copy the lines shown (filter applied)' }, 'Copy');
    this.countEl = h('span', { id: 'log-count', class: 'log-count', 'aria-live': 'polite' });
    this.spacer = h('div', { class: 'log-spacer', 'aria-hidden': 'true' });
    this.rowsEl = h('div', { class: 'log-rows', role: 'list', 'aria-label': 'Log lines' });
    this.emptyEl = h('div', { class: 'log-empty' }, 'No output yet.');
    this.scroller = h('div', { id: 'log-view', class: 'log-view', tabindex: 0, role: 'region', 'aria-label': 'Run log' },
      this.spacer, this.rowsEl, this.emptyEl);
    this.el = h('section', { id: 'log-section', class: 'log-section', 'aria-label': 'Logs' },
      h('div', { class: 'log-toolbar', role: 'toolbar', 'aria-label': 'Log tools' },
        this.filterEl, this.onlyMatchingEl, this.streamsEl, this.timestampsEl, this.followBtn, copyBtn, this.countEl),
      this.scroller);

    this.filterEl.addEventListener('input', () => {
      clearTimeout(this.filterTimer);
      // Wait for a pause in typing: refiltering 100,000 lines per keystroke would stall the input.
      this.filterTimer = setTimeout(() => this.setQuery(this.filterEl.value), 120);
    });
    this.filterEl.addEventListener('keydown', (e: KeyboardEvent) => {
      if (e.key !== 'Enter') return;
      // Apply a query still waiting for the typing pause, then jump.
      clearTimeout(this.filterTimer);
      this.setQuery(this.filterEl.value);
      this.jumpToHit(e.shiftKey ? -1 : 1);
    });
    this.onlyMatchingEl.addEventListener('change', () => this.setOnlyMatching(this.onlyMatchingEl.checked));
    this.streamsEl.addEventListener('change', () => this.setStreams(streamsFromSelect(this.streamsEl.value)));
    this.timestampsEl.addEventListener('change', () => this.setTimestamps(this.timestampsEl.checked));
    this.followBtn.addEventListener('click', () => this.setFollowing(!this.ui.following));
    copyBtn.addEventListener('click', () => {
      const { text, lines } = this.shownText();
      this.onCopy(text, lines);
    });
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    // Scrolling up by wheel or key stops following at once, even while new lines keep the view at the bottom.
    this.scroller.addEventListener('wheel', (e) => { if (e.deltaY < 0) this.stopFollowing(); }, { passive: true });
    this.scroller.addEventListener('keydown', (e) => {
      if (e.key === 'End' && (e.ctrlKey || !e.shiftKey)) this.setFollowing(true);
      else if (e.key === 'ArrowUp' || e.key === 'PageUp' || e.key === 'Home') this.stopFollowing();
    });
    new ResizeObserver(() => this.schedule()).observe(this.scroller);
    this.setStore(store);
    this.syncControls();
  }

  /** Call once the view is in the document: measures the row height from the editor font. */
  mount(): void {
    const size = parseFloat(getComputedStyle(this.scroller).fontSize) || 13;
    this.rowHeight = Math.ceil(size * 1.45);
    this.scroller.style.setProperty('--log-row-height', `${this.rowHeight}px`);
    if (!this.ui.following && this.ui.scrollTop !== undefined) {
      const top = this.ui.scrollTop;
      this.render();
      this.scroller.scrollTop = top;
    }
    this.schedule();
  }

  /** Shows another store (a reset, or a restore), keeping the toolbar settings. */
  setStore(store: LineStore): void {
    this.store = store;
    this.newWhileAway = 0;
    this.rebuildFilter();
  }

  get uiState(): LogViewUi {
    return { ...this.ui, streams: [...this.ui.streams], scrollTop: this.ui.following ? undefined : this.lastScrollTop };
  }

  /** Adds a chunk of a stream to the store and the filter index; the screen updates on the next frame. */
  append(stream: LogStream, data: string, time: number): void {
    const change = this.store.append(stream, data, time);
    this.indexChange(change);
    this.schedule();
  }

  /** After a batch: drops the oldest lines past the bound. */
  endBatch(): void {
    if (this.store.trim() === 0) return;
    this.shown.trim(this.store);
    this.hits?.trim(this.store);
    this.schedule();
  }

  private indexChange(change: LineChange): void {
    if (change.reopened) this.version++;
    const added = this.shown.update(this.store, change);
    if (this.hits && this.hits !== this.shown) this.hits.update(this.store, change);
    if (!this.ui.following) this.newWhileAway += Math.max(0, added);
  }

  private rebuildFilter(): void {
    const streams = new Set(this.ui.streams);
    this.filter = compileFilter({ query: this.ui.query, streams });
    const matching = new LineIndex(this.filter, this.store);
    if (this.ui.query === '') {
      this.shown = matching;
      this.hits = null;
    } else if (this.ui.onlyMatching) {
      this.shown = matching;
      this.hits = matching;
    } else {
      // Search: every line of the chosen streams stays on the list; the matches are highlighted and jumped to.
      this.shown = new LineIndex(compileFilter({ query: '', streams }), this.store);
      this.hits = matching;
    }
    this.currentHit = -1;
    this.version++;
    this.schedule();
  }

  /** Search mode: scrolls to the next (or previous) matching line after the one last jumped to or the top row. */
  jumpToHit(direction: 1 | -1): void {
    const hits = this.hits?.list;
    if (!hits || hits.length === 0) return;
    let k: number;
    if (this.currentHit >= 0) {
      // From the hit last jumped to: the one after it, or the one before it.
      k = direction > 0 ? lowerBound(hits, this.currentHit + 1) : lowerBound(hits, this.currentHit) - 1;
    } else {
      // From the top row on screen: the first hit at or below it, or the last one above it.
      const top = this.shown.at(this.store, Math.floor(this.scroller.scrollTop / this.rowHeight)) ?? this.store.dropped;
      k = direction > 0 ? lowerBound(hits, top) : lowerBound(hits, top) - 1;
    }
    if (k >= hits.length) k = 0; // wrap around
    if (k < 0) k = hits.length - 1;
    this.currentHit = hits[k];
    this.stopFollowing();
    const pos = this.shown.positionOf(this.store, this.currentHit);
    // A third of the way down, so the lines before it are in view too.
    this.scroller.scrollTop = Math.max(0, pos * this.rowHeight - this.scroller.clientHeight / 3);
    this.version++;
    this.schedule();
  }

  setQuery(query: string): void {
    if (query === this.ui.query) return;
    this.ui.query = query;
    this.rebuildFilter();
    this.onUiChange();
  }

  setStreams(streams: LogStream[]): void {
    this.ui.streams = streams;
    this.rebuildFilter();
    this.onUiChange();
  }

  setOnlyMatching(on: boolean): void {
    this.ui.onlyMatching = on;
    this.rebuildFilter();
    this.onUiChange();
  }

  setTimestamps(on: boolean): void {
    this.ui.timestamps = on;
    this.version++;
    this.schedule();
    this.onUiChange();
  }

  setFollowing(on: boolean): void {
    this.ui.following = on;
    if (on) this.newWhileAway = 0;
    this.schedule();
    this.onUiChange();
  }

  private stopFollowing(): void {
    if (this.ui.following) this.setFollowing(false);
  }

  private onScroll(): void {
    const s = this.scroller;
    this.lastScrollTop = s.scrollTop;
    // Our own scroll to the bottom can land after the viewport shrank (a card grew): not the user's doing.
    if (s.scrollTop === this.ownScrollTop) {
      this.schedule();
      return;
    }
    // Back at the bottom resumes following; anywhere else stops it.
    const bottom = isAtBottom(s.scrollTop, s.clientHeight, s.scrollHeight, this.rowHeight / 2);
    if (bottom !== this.ui.following) this.setFollowing(bottom);
    else this.schedule();
  }

  /** Number of lines the current filter shows. */
  get shownCount(): number {
    return this.shown.count(this.store);
  }

  private lineAt(shownIndex: number): { line: LogLine; abs: number } | undefined {
    const abs = this.shown.at(this.store, shownIndex);
    const line = abs === undefined ? undefined : this.store.lines[abs - this.store.dropped];
    return line && abs !== undefined ? { line, abs } : undefined;
  }

  /** The shown lines as plain text, for Copy. */
  shownText(): { text: string; lines: number } {
    const out: string[] = [];
    for (let i = 0; i < this.shownCount; i++) {
      const l = this.lineAt(i)?.line;
      if (l) out.push(this.ui.timestamps ? `${formatClock(l.time)} ${l.text}` : l.text);
    }
    return { text: out.join('\n'), lines: out.length };
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Draws now (tests and the harness call it to measure; normally the next frame does). */
  render(): void {
    const count = this.shownCount;
    const rh = this.rowHeight;
    const height = `${count * rh}px`;
    if (this.spacer.style.height !== height) this.spacer.style.height = height;
    const s = this.scroller;
    if (this.ui.following) {
      const top = Math.max(0, count * rh - s.clientHeight);
      if (Math.abs(s.scrollTop - top) >= 1) {
        s.scrollTop = top;
        this.ownScrollTop = s.scrollTop;
      }
    }
    const { start, end } = visibleRange(s.scrollTop, s.clientHeight, rh, count, 12);
    const transform = `translateY(${start * rh}px)`;
    if (this.rowsEl.style.transform !== transform) this.rowsEl.style.transform = transform;
    const rows = this.rowsEl.children;
    const n = end - start;
    while (rows.length > n) this.rowsEl.lastElementChild!.remove();
    for (let k = 0; k < n; k++) {
      let row = rows[k] as HTMLElement | undefined;
      if (!row) {
        row = h('div', { role: 'listitem' });
        this.rowsEl.append(row);
      }
      const at = this.lineAt(start + k);
      if (!at) continue;
      const state = this.rowState.get(row);
      if (state && state.line === at.line && state.version === this.version) continue;
      this.fillRow(row, at.line, at.abs === this.currentHit);
      this.rowState.set(row, { line: at.line, version: this.version });
      row.setAttribute('aria-posinset', String(start + k + 1));
      row.setAttribute('aria-setsize', String(count));
    }
    this.emptyEl.hidden = count > 0;
    setText(this.emptyEl, this.store.length > 0 ? 'No lines match the filter.' : 'No output yet.');
    this.syncControls();
  }

  private fillRow(row: HTMLElement, line: LogLine, current: boolean): void {
    row.className = `log-line stream-${line.stream}${current ? ' current-hit' : ''}`;
    const text = document.createElement('span');
    text.className = 'log-text';
    const segments = lineSegments(line);
    const ranges = this.ui.query ? this.filter.ranges(line.text) : [];
    if (ranges.length === 0 && segments.length === 1 && !segments[0].style) {
      text.textContent = line.text;
    } else {
      for (const p of ranges.length ? splitByRanges(segments, ranges) : segments.map((s) => ({ ...s, mark: false }))) {
        text.append(piece(p));
      }
    }
    if (this.ui.timestamps) {
      row.replaceChildren(h('span', { class: 'log-time' }, formatClock(line.time)), text);
    } else {
      row.replaceChildren(text);
    }
  }

  private syncControls(): void {
    const total = this.store.length;
    const dropped = this.store.dropped ? ` (${formatCount(this.store.dropped)} earlier dropped)` : '';
    const shown = this.shownCount;
    let count = shown === total
      ? `${formatCount(total)} line${total === 1 ? '' : 's'}${dropped}`
      : `${formatCount(shown)} of ${formatCount(total)} lines${dropped}`;
    if (this.hits && this.hits !== this.shown) {
      const n = this.hits.count(this.store);
      const k = this.currentHit >= 0 && this.hits.list ? lowerBound(this.hits.list, this.currentHit) + 1 : 0;
      count = `${k ? `${formatCount(k)} of ` : ''}${formatCount(n)} match${n === 1 ? '' : 'es'} · ${count}`;
    }
    setText(this.countEl, this.filter.error ?? count);
    setAttr(this.followBtn, 'secondary', this.ui.following ? null : '');
    setAttr(this.followBtn, 'aria-pressed', String(this.ui.following));
    setText(this.followBtn, this.ui.following || this.newWhileAway === 0 ? 'Follow' : `Follow (${formatCount(this.newWhileAway)} new)`);
    if (this.filterEl.value !== this.ui.query && document.activeElement !== this.filterEl) this.filterEl.value = this.ui.query;
    this.filterEl.invalid = this.filter.error !== undefined;
    const sel = selectFromStreams(this.ui.streams);
    if (this.streamsEl.value !== sel) this.streamsEl.value = sel;
    if (this.timestampsEl.checked !== this.ui.timestamps) this.timestampsEl.checked = this.ui.timestamps;
    if (this.onlyMatchingEl.checked !== this.ui.onlyMatching) this.onlyMatchingEl.checked = this.ui.onlyMatching;
  }
}

function piece(p: Segment & { mark: boolean }): Node {
  let node: Node = document.createTextNode(p.text);
  if (p.style) node = styled(node, p.style);
  if (p.mark) {
    const m = document.createElement('mark');
    m.className = 'log-match';
    m.append(node);
    node = m;
  }
  return node;
}

function styled(child: Node, style: AnsiStyle): HTMLElement {
  const span = document.createElement('span');
  const classes = styleClasses(style);
  if (classes.length) span.className = classes.join(' ');
  // 256-colour and true-colour values go through CSSOM, which a strict CSP allows (a style attribute it would not).
  if (typeof style.fg === 'string') span.style.color = style.fg;
  if (typeof style.bg === 'string') span.style.backgroundColor = style.bg;
  span.append(child);
  return span;
}

function streamsFromSelect(v: string): LogStream[] {
  if (v === 'stdout' || v === 'stderr' || v === 'build') return [v];
  if (v === 'run') return ['stdout', 'stderr'];
  return [...ALL_STREAMS];
}

function selectFromStreams(s: LogStream[]): string {
  if (s.length === 3) return 'all';
  if (s.length === 2 && s.includes('stdout') && s.includes('stderr')) return 'run';
  return s[0] ?? 'all';
}
