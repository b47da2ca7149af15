/**
 * A measurement hook for bench/editor.ts, off unless BYTENITE_RUN_TRACE names a file (users never set it):
 * when a run ends, appends one JSON line saying when its container output reached the extension host (the
 * `at` stamps Run.add already keeps) and how many lines each stream had. The benchmark times the run panel
 * against that clock: a webview cannot see when the extension received a line.
 */
import { promises as fs } from 'node:fs';
import * as vscode from 'vscode';
import type { RunStore } from './runStore';
import type { Run } from './run';

/** One line of the trace file. */
export interface RunTrace {
  runId: string;
  /** `exited`, `failed` or `cancelled`. */
  kind: string;
  /** `warm` or `cold`. */
  start: string;
  /** Epoch ms the first and the last stdout/stderr log event arrived in the extension host. */
  firstLogAt: number;
  lastLogAt: number;
  /** Lines (newlines) per stream. */
  lines: Record<string, number>;
  /** The last complete stdout line. */
  lastLine: string;
}

export function traceRuns(store: RunStore, file = process.env.BYTENITE_RUN_TRACE): vscode.Disposable {
  if (!file) return { dispose() {} };
  return store.onDidAdd((run) => {
    const sub = run.onDidChange((events) => {
      if (!events.some((e) => e.event.kind === 'exited' || e.event.kind === 'failed' || e.event.kind === 'cancelled')) return;
      sub.dispose();
      void fs.appendFile(file, `${JSON.stringify(summarize(run))}\n`);
    });
  });
}

function summarize(run: Run): RunTrace {
  let firstLogAt = NaN;
  let lastLogAt = NaN;
  let lastStdout = '';
  const lines: Record<string, number> = {};
  for (const { at, event: e } of run.events) {
    if (e.kind !== 'log') continue;
    let n = 0;
    for (let i = e.data.indexOf('\n'); i >= 0; i = e.data.indexOf('\n', i + 1)) n++;
    lines[e.stream] = (lines[e.stream] ?? 0) + n;
    if (e.stream === 'build') continue;
    if (Number.isNaN(firstLogAt)) firstLogAt = at;
    lastLogAt = at;
    // Keep enough of the stream's tail to hold its last complete line.
    if (e.stream === 'stdout') lastStdout = (lastStdout + e.data).slice(-4096);
  }
  const complete = lastStdout.slice(0, lastStdout.lastIndexOf('\n'));
  const final = run.final;
  return {
    runId: run.runId, kind: final?.kind ?? run.state, start: final?.start ?? '', firstLogAt, lastLogAt, lines,
    lastLine: complete.slice(complete.lastIndexOf('\n') + 1),
  };
}
