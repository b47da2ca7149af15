/**
 * Window math of the virtualized log: every row has the same height, so the rows on screen follow from the
 * scroll position alone, and only those (plus a margin) exist in the DOM.
 */

export interface WindowRange {
  /** First row to render (inclusive). */
  start: number;
  /** Row after the last one to render (exclusive). */
  end: number;
}

/** Rows to render for a viewport, with `overscan` rows above and below so fast scrolling shows no gaps. */
export function visibleRange(scrollTop: number, viewportHeight: number, rowHeight: number, count: number, overscan = 10): WindowRange {
  if (count <= 0 || rowHeight <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const last = Math.ceil((Math.max(0, scrollTop) + Math.max(0, viewportHeight)) / rowHeight);
  const start = Math.max(0, Math.min(count, first - overscan));
  const end = Math.max(start, Math.min(count, last + overscan));
  return { start, end };
}

/** Whether the viewport shows the last row, give or take `slack` pixels (a fraction of a row, rounding). */
export function isAtBottom(scrollTop: number, viewportHeight: number, scrollHeight: number, slack = 4): boolean {
  return scrollTop + viewportHeight >= scrollHeight - slack;
}

/** The scrollTop that puts row `index` at the top, clamped to the scrollable range. */
export function scrollTopForRow(index: number, rowHeight: number, viewportHeight: number, count: number): number {
  const max = Math.max(0, count * rowHeight - viewportHeight);
  return Math.max(0, Math.min(max, index * rowHeight));
}
