/**
 * The absolute numbers (dropped + i) of the lines that pass a filter, kept up to date as lines are added,
 * extended or dropped, so a filter over 100,000 lines is paid once, not on every new line.
 */
import type { LineChange, LineStore } from './lineStore';
import type { CompiledFilter } from './logFilter';

export class LineIndex {
  /** null: every line passes (the filter is a pass-through). */
  list: number[] | null = null;

  constructor(readonly filter: CompiledFilter, store: LineStore) {
    if (filter.all) return;
    const m: number[] = [];
    const { lines, dropped } = store;
    for (let i = 0; i < lines.length; i++) if (filter.test(lines[i].text, lines[i].stream)) m.push(dropped + i);
    this.list = m;
  }

  /** Folds in what `store.append` returned; returns how many entries were added (net). */
  update(store: LineStore, change: LineChange): number {
    const total = store.dropped + store.length;
    const firstNew = total - change.appended;
    if (!this.list) return change.appended;
    const m = this.list;
    const before = m.length;
    const passes = (abs: number) => {
      const line = store.lines[abs - store.dropped];
      return line !== undefined && this.filter.test(line.text, line.stream);
    };
    if (change.reopened) {
      // The last line grew: it may pass now, or no longer.
      const last = firstNew - 1;
      if (m[m.length - 1] === last) m.pop();
      if (passes(last)) m.push(last);
    }
    for (let abs = firstNew; abs < total; abs++) if (passes(abs)) m.push(abs);
    return m.length - before;
  }

  /** Forgets lines the store dropped from its front. */
  trim(store: LineStore): void {
    if (!this.list) return;
    const k = lowerBound(this.list, store.dropped);
    if (k > 0) this.list.splice(0, k);
  }

  /** Number of lines that pass. */
  count(store: LineStore): number {
    return this.list ? this.list.length : store.length;
  }

  /** Absolute number of the i-th passing line. */
  at(store: LineStore, i: number): number | undefined {
    if (this.list) return this.list[i];
    return i >= 0 && i < store.length ? store.dropped + i : undefined;
  }

  /** Position among the passing lines of the first one at or after absolute number `abs`. */
  positionOf(store: LineStore, abs: number): number {
    if (this.list) return lowerBound(this.list, abs);
    return Math.max(0, Math.min(store.length, abs - store.dropped));
  }
}

/** First index whose value is >= x, in a sorted array. */
export function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
