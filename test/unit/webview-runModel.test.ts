import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STATS_KEPT, applyEvent, newRunModel, setFinal } from '../../webview/panel/runModel';
import { phaseRows, phaseTimeText } from '../../webview/panel/phaseRows';
import { exitText, startKindText } from '../../webview/panel/runOutcome';
import { MAX_AHEAD_MS, TickerDisplay, tickerCost } from '../../webview/panel/costTicker';
import { makeSavedState, readSavedState } from '../../webview/panel/savedState';
import { LineStore } from '../../webview/components/lineStore';
import { DEFAULT_LOG_UI } from '../../webview/components/logViewUi';
import { fakeFinal, fakeRun } from '../webview/fakeRun';
import type { SeqEvent } from '../../webview/protocol';

const T0 = 1_000_000;
const at = (seq: number, ms: number, event: SeqEvent['event']): SeqEvent => ({ seq, at: T0 + ms, event });

test('a whole cold run folds into its final state; duplicates are ignored', () => {
  const m = newRunModel('r-abc123');
  const events = fakeRun({ lines: 20 });
  let logs = 0;
  for (const e of events) if (applyEvent(m, e) === 'log') logs++;
  assert.equal(logs, 21);
  assert.equal(m.state, 'exited');
  assert.equal(m.seq, events.length);
  assert.equal(m.start?.kind, 'cold');
  assert.equal(m.build?.cachedSeen, 1);
  assert.equal(applyEvent(m, events[3]), 'duplicate');
  assert.equal(m.stats.t.length, 4);
});

test('a late stats event does not take a finished run back to running', () => {
  const m = newRunModel('r-abc123');
  applyEvent(m, at(1, 0, { kind: 'running', startedAt: 'x' }));
  applyEvent(m, at(2, 10, fakeFinal()));
  applyEvent(m, at(3, 20, { kind: 'stats', cpuPercent: 1, memoryBytes: 1, memoryLimitBytes: 2, pids: 1 }));
  assert.equal(m.state, 'exited');
});

test('the engine\'s pull of the context during a BuildKit build is a detail of the build, not a return to uploading', () => {
  const m = newRunModel('r-abc123');
  applyEvent(m, at(1, 0, { kind: 'uploading', bytesDone: 10, bytesTotal: 10 }));
  applyEvent(m, at(2, 5, { kind: 'building', step: 1, steps: 2, instruction: 'COPY . /ctx', cached: false }));
  applyEvent(m, at(3, 9, { kind: 'uploading', to: 'engine', bytesDone: 512, bytesTotal: 2048 }));
  assert.equal(m.state, 'building');
  assert.deepEqual(m.upload, { bytesDone: 10, bytesTotal: 10 });
  assert.equal(m.phaseAt.upload, T0);
  const build = phaseRows(m, T0 + 10).find((r) => r.phase === 'build');
  assert.equal(build?.detail, 'step 1/2 · 512 B of 2.0 KiB sent to the engine');
});

test('stats are bounded', () => {
  const m = newRunModel('r-abc123');
  for (let i = 1; i <= STATS_KEPT + 5; i++) applyEvent(m, at(i, i * 1000, { kind: 'stats', cpuPercent: i, memoryBytes: 1048576, memoryLimitBytes: 0, pids: 1 }));
  assert.ok(m.stats.t.length <= STATS_KEPT);
  assert.equal(m.stats.cpuPercent[m.stats.cpuPercent.length - 1], STATS_KEPT + 5);
  assert.equal(m.stats.memoryMiB[0], 1);
});

test('live phases: times between first events, the current one ticks, warm skips upload and build', () => {
  const m = newRunModel('r-abc123');
  applyEvent(m, at(1, 0, { kind: 'queued', position: 2 }));
  applyEvent(m, at(2, 100, { kind: 'starting', start: 'warm', image: 'i', cachedSteps: 0, steps: 0 }));
  applyEvent(m, at(3, 400, { kind: 'running', startedAt: 'x' }));
  const rows = phaseRows(m, T0 + 1400);
  const by = Object.fromEntries(rows.map((r) => [r.phase, r]));
  assert.equal(by.queued.ms, 100);
  assert.equal(by.queued.status, 'done');
  assert.equal(by.upload.status, 'skipped');
  assert.equal(by.upload.detail, 'warm: not needed');
  assert.equal(by.start.ms, 300);
  assert.equal(by.running.status, 'active');
  assert.equal(by.running.ms, 1000);
  assert.equal(by.exit.status, 'pending');
  assert.equal(phaseTimeText(by.build), 'skipped');
});

test('final phases come from the agent; a build failure marks build failed and later phases unreached', () => {
  const m = newRunModel('r-abc123');
  applyEvent(m, at(1, 0, { kind: 'uploading', bytesDone: 1, bytesTotal: 1 }));
  applyEvent(m, at(2, 10, { kind: 'building', step: 1, steps: 2, instruction: 'RUN false', cached: false }));
  setFinal(m, { ...fakeFinal(), kind: 'failed', code: 'build', message: 'RUN false returned 1', exitCode: null });
  const by = Object.fromEntries(phaseRows(m, 0).map((r) => [r.phase, r]));
  assert.equal(by.upload.status, 'done');
  assert.equal(by.upload.ms, 340);
  assert.equal(by.build.status, 'failed');
  assert.equal(by.start.status, 'pending');
  assert.equal(by.running.status, 'pending');
  assert.equal(by.exit.status, 'failed');
  assert.equal(by.exit.detail, 'failed: build');
});

test('exit text: success, OOM called out with the limit, signals, failures, stop', () => {
  assert.deepEqual(exitText(fakeFinal()), { title: 'Exited with code 0', tone: 'ok', oom: false });
  const oom = exitText(fakeFinal({ oom: true }), '4 GiB');
  assert.equal(oom.oom, true);
  assert.equal(oom.title, 'Out of memory: killed (exit code 137)');
  assert.match(oom.detail ?? '', /4 GiB.*Choose more memory/);
  assert.match(exitText({ ...fakeFinal(), exitCode: 143 }).detail ?? '', /SIGTERM/);
  assert.equal(exitText({ ...fakeFinal(), kind: 'cancelled', exitCode: null }).title, 'Stopped');
  const failed = exitText({ ...fakeFinal(), kind: 'failed', code: 'timeout', message: 'ran past 10m', exitCode: 137 });
  assert.equal(failed.title, 'Failed (timeout), exit code 137');
  assert.equal(failed.detail, 'ran past 10m');
});

test('warm/cold reasons', () => {
  assert.match(startKindText('warm', 0, 0).reason, /reused: no upload, no build/);
  assert.match(startKindText('cold', 3, 1).reason, /Built 3 steps, 1 from the build cache/);
});

test('the ticker moves at the hourly rate between cost events, at most one interval ahead', () => {
  const m = newRunModel('r-abc123');
  applyEvent(m, at(1, 0, { kind: 'running', startedAt: 'x' }));
  assert.equal(tickerCost(m, T0), undefined);
  applyEvent(m, at(2, 1000, { kind: 'cost', total: 0.001, billedMs: 1000, currency: 'USD' }));
  assert.equal(tickerCost(m, T0 + 1500, 3.6), 0.001 + 0.0005);
  assert.equal(tickerCost(m, T0 + 60_000, 3.6), 0.001 + MAX_AHEAD_MS * 0.000001);
  // Without a price, the rate of the last two events.
  applyEvent(m, at(3, 2000, { kind: 'cost', total: 0.003, billedMs: 2000, currency: 'USD' }));
  assert.ok(Math.abs(tickerCost(m, T0 + 2500)! - 0.004) < 1e-12);
  setFinal(m, fakeFinal());
  assert.equal(tickerCost(m, T0 + 9999), 0.000412);
});

test('the shown ticker never goes back while running, but the final cost replaces it', () => {
  const t = new TickerDisplay();
  assert.equal(t.next(0.002, false), 0.002);
  assert.equal(t.next(0.0019, false), 0.002);
  assert.equal(t.next(0.0015, true), 0.0015);
});

test('saved state is bounded and says when the host must replay everything', () => {
  const m = newRunModel('r-abc123');
  const store = new LineStore();
  for (const e of fakeRun({ lines: 50 })) {
    if (applyEvent(m, e) === 'log' && e.event.kind === 'log') store.append(e.event.stream, e.event.data, e.at);
  }
  const small = makeSavedState(undefined, m, store, DEFAULT_LOG_UI, { stopping: false, outputsAvailable: true }, 100);
  assert.equal(small.haveSeq, m.seq, 'all lines kept: only later events are needed');
  const trimmed = makeSavedState(undefined, m, store, DEFAULT_LOG_UI, { stopping: false, outputsAvailable: true }, 10);
  assert.equal(trimmed.haveSeq, 0, 'lines left out: replay from the start');
  const back = readSavedState(JSON.parse(JSON.stringify(trimmed)));
  assert.ok(back);
  assert.equal(back.store.length, 10);
  assert.equal(back.store.dropped, 41);
  assert.equal(back.model.final?.exitCode, 0);
  assert.equal(back.outputsAvailable, true);
  assert.equal(readSavedState({ v: 2, runId: 'x' }), null);
  assert.equal(readSavedState(undefined), null);
});
