/**
 * The panel's saved state (`setState`), bounded: the run model (small: stats are capped), the last
 * PANEL_SAVED_LINES log lines and the log toolbar settings. When lines had to be left out, `haveSeq` is
 * 0 so the host replays the whole run instead of only what came after.
 */
import { LineStore, type LineStoreSnapshot } from '../components/lineStore';
import { DEFAULT_LOG_UI, type LogViewUi } from '../components/logViewUi';
import { PANEL_SAVED_LINES, type PanelSavedState, type RunInfo } from '../protocol';
import { type RunModel, newRunModel } from './runModel';

export interface PanelView {
  model: RunModel;
  lines: LineStoreSnapshot;
  ui: LogViewUi;
  stopping: boolean;
  outputsAvailable: boolean;
}

export function makeSavedState(run: RunInfo | undefined, model: RunModel, store: LineStore, ui: LogViewUi,
  flags: { stopping: boolean; outputsAvailable: boolean }, maxLines = PANEL_SAVED_LINES): PanelSavedState {
  const lines = store.snapshot(maxLines);
  const complete = lines.dropped === 0;
  const view: PanelView = { model, lines, ui, ...flags };
  return { v: 1, runId: model.runId, run, haveSeq: complete ? model.seq : 0, view };
}

export interface Restored {
  run?: RunInfo;
  haveSeq: number;
  model: RunModel;
  store: LineStore;
  ui: LogViewUi;
  stopping: boolean;
  outputsAvailable: boolean;
}

/** Reads a saved state back; anything unrecognisable (an older version, a different shape) gives null. */
export function readSavedState(s: unknown, maxLines?: number): Restored | null {
  if (!s || typeof s !== 'object') return null;
  const st = s as Partial<PanelSavedState>;
  if (st.v !== 1 || typeof st.runId !== 'string') return null;
  const view = st.view as Partial<PanelView> | undefined;
  if (!view?.model || !view.lines || !Array.isArray(view.lines.lines)) {
    return { run: st.run, haveSeq: 0, model: newRunModel(st.runId), store: new LineStore(maxLines), ui: DEFAULT_LOG_UI, stopping: false, outputsAvailable: false };
  }
  return {
    run: st.run,
    haveSeq: typeof st.haveSeq === 'number' ? st.haveSeq : 0,
    model: view.model,
    store: LineStore.restore(view.lines, maxLines),
    ui: { ...DEFAULT_LOG_UI, ...view.ui },
    stopping: !!view.stopping,
    outputsAvailable: !!view.outputsAvailable,
  };
}
