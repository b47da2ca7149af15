/**
 * A measurement hook for the editor benchmarks (bench/editor.ts, bench/editorAgain.ts), off unless
 * BYTENITE_RUN_TRACE names a file (users never set it): when a run ends, and once its panel said when it
 * showed the run's first line (or 3 s later), appends one JSON line saying when its container output
 * reached the extension host (the `at` stamps Run.add already keeps), how many lines each stream had, and
 * the run's start marks (Run.marks: click, command, request, acceptance, post to the panel, paint). The
 * benchmarks time the run panel against that clock: a webview cannot see when the extension received a line.
 */
import { promises as fs } from 'node:fs';
import * as vscode from 'vscode';
import type { PanelMarks } from '../../webview/protocol';
import { panelMarksToAdd } from './panelMarks';
import type { RunStore } from './runStore';
import type { Run, StartMarks } from './run';

/** How long a finished run's line waits for its panel's paint marks (a run with no panel open has none). */
const PAINT_WAIT_MS = 3000;

/** One line of the trace file. */
export interface RunTrace {
  runId: string;
  /** `exited`, `failed` or `cancelled`. */
  kind: string;
  /** `hot`, `warm` or `cold`. */
  start: string;
  /** Epoch ms the first and the last stdout/stderr log event arrived in the extension host. */
  firstLogAt: number;
  lastLogAt: number;
  /** Epoch ms the agent stamped on that first event (its `time`: when it read the container's output). */
  firstLogAgentAt: number;
  /** Lines (newlines) per stream. */
  lines: Record<string, number>;
  /** The last complete stdout line. */
  lastLine: string;
  marks: StartMarks;
}

/** Whether runs are traced in this extension host (the panels then report their paint marks). */
export function tracing(): boolean {
  return Boolean(process.env.BYTENITE_RUN_TRACE);
}

export function traceRuns(store: RunStore, file = process.env.BYTENITE_RUN_TRACE): vscode.Disposable {
  if (!file) return { dispose() {} };
  return store.onDidAdd((run) => {
    const sub = run.onDidChange((events) => {
      if (!events.some((e) => e.event.kind === 'exited' || e.event.kind === 'failed' || e.event.kind === 'cancelled')) return;
      sub.dispose();
      void painted(run).then(() => fs.appendFile(file, `${JSON.stringify(summarize(run))}\n`));
    });
  });
}

/** The panel's report of the run's first line on screen: its page-clock marks join the run's, once. */
export function recordPanelMarks(run: Run, report: PanelMarks): void {
  const add = panelMarksToAdd(run.marks, report);
  if (add) Object.assign(run.marks, add);
}

async function painted(run: Run): Promise<void> {
  const end = Date.now() + PAINT_WAIT_MS;
  while (run.marks.paintedAt === undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

function summarize(run: Run): RunTrace {
  let firstLogAt = NaN;
  let firstLogAgentAt = NaN;
  let lastLogAt = NaN;
  let lastStdout = '';
  const lines: Record<string, number> = {};
  for (const { at, event: e } of run.events) {
    if (e.kind !== 'log') continue;
    let n = 0;
    for (let i = e.data.indexOf('\n'); i >= 0; i = e.data.indexOf('\n', i + 1)) n++;
    lines[e.stream] = (lines[e.stream] ?? 0) + n;
    if (e.stream === 'build') continue;
    if (Number.isNaN(firstLogAt)) {
      firstLogAt = at;
      firstLogAgentAt = Date.parse(e.time);
    }
    lastLogAt = at;
    // Keep enough of the stream's tail to hold its last complete line.
    if (e.stream === 'stdout') lastStdout = (lastStdout + e.data).slice(-4096);
  }
  const complete = lastStdout.slice(0, lastStdout.lastIndexOf('\n'));
  const final = run.final;
  return {
    runId: run.runId, kind: final?.kind ?? run.state, start: final?.start ?? '', firstLogAt, firstLogAgentAt, lastLogAt, lines,
    lastLine: complete.slice(complete.lastIndexOf('\n') + 1), marks: run.marks,
  };
}
