/**
 * The run panel's report of when it showed a run's first line (the webview's `trace` message): it comes
 * from a webview, so it is checked before its marks join the run's own (extension/runs/runTrace.ts).
 */
import type { StartMarks } from './run';

type PanelMarkNames = 'clickAt' | 'receivedAt' | 'insertedAt' | 'paintedAt';

const epochMs = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/**
 * The marks a report adds to a run that has `have`: undefined for a report that is not three epoch times
 * (received, inserted, painted, in that order) with an optional click before them, and for a run whose
 * paint is known already (a reloaded panel replays a run it showed, and reports it again).
 */
export function panelMarksToAdd(have: StartMarks, report: unknown): Pick<StartMarks, PanelMarkNames> | undefined {
  if (have.paintedAt !== undefined || !report || typeof report !== 'object') return undefined;
  const { clickAt, receivedAt, insertedAt, paintedAt } = report as Record<string, unknown>;
  if (!epochMs(receivedAt) || !epochMs(insertedAt) || !epochMs(paintedAt)) return undefined;
  if (!(receivedAt <= insertedAt && insertedAt <= paintedAt)) return undefined;
  const click = epochMs(clickAt) && clickAt <= receivedAt ? { clickAt } : {};
  return { ...click, receivedAt, insertedAt, paintedAt };
}
