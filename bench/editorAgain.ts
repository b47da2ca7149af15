/**
 * Benchmark 6, the editor's own speed: Run Again in the run panel to the new run's first line painted, in
 * code-server with the packaged extension and its local agent, against what a terminal user types, to its
 * first line, alternating. The container prints `run $BYTENITE_RUN_ID` at once, so each run's line is its
 * own. The extension's run trace (BYTENITE_RUN_TRACE) confirms each run's start and gives the marks of each
 * step, from the click (the panel's page clock) through the extension host and back to the frame that
 * painted the line (the panel's page clock again, so click to paint is one clock). The page is also polled,
 * every 100 ms (every frame that has a log), for a line in view that no earlier run printed: the check that
 * the painted line is the run's own and in view. (A poll every 10 ms timed the line itself, but its own
 * delay and its load on the page, six frames asked every 10 ms on a 2-core machine, were in the figure.)
 *   - hot: the agent's pool holds a container of that kind (`docker run --rm` of the same image);
 *   - cold: a file of the context changed before each Run Again, so one layer is rebuilt
 *     (`DOCKER_BUILDKIT=1 docker build` of the same change, then `docker run --rm`);
 *   - warm: a second code-server whose local agent runs with `bytenite.localAgent.hotPool: 0`, so each run
 *     creates its container (`docker run --rm`).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { launchBrowser } from '../test/editor/browser';
import { CODE_SERVER, startCodeServer } from '../test/editor/codeServer';
import { webviewWith } from '../test/editor/workbench';
import type { RunTrace } from '../extension/runs/runTrace';
import type { StartMarks } from '../extension/runs/run';
import { BENCH_ID, DOCKER, DOCKER_ENV, PAIRS, Result, comparison, dockerBuild, figure, log, makeContext, notMeasured, onCleanup, removeImage, runProcess, tempDir } from './lib';
import { packageVsix } from './editor';

const DOCKERFILE = 'again/Dockerfile';
const CMD = 'COPY stamp.txt /stamp.txt\nLABEL bytenite.cpus=0.5 bytenite.memory=128m\nCMD ["sh", "-c", "echo run $BYTENITE_RUN_ID"]\n';

/** In a frame: the text of a `run …` line in the log's viewport that is not one of `seen`, else null. */
const NEW_LINE_IN_VIEW = `(seen) => {
  const s = document.getElementById('log-view');
  if (!s) return null;
  const box = s.getBoundingClientRect();
  for (const el of s.querySelectorAll('.log-line .log-text')) {
    const t = el.textContent || '';
    if (!t.startsWith('run ') || seen.includes(t)) continue;
    const r = el.getBoundingClientRect();
    if (r.height > 0 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1) return t;
  }
  return null;
}`;

/** Polls every frame until one shows a new `run …` line in view; returns its text. */
async function newLine(page: Page, seen: string[], timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      const text = (await f.evaluate(`(${NEW_LINE_IN_VIEW})(${JSON.stringify(seen)})`).catch(() => null)) as string | null;
      if (text) return text;
    }
    if (Date.now() > end) throw new Error(`no new run line in view within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The frame whose Run Again is enabled (the finished run's panel in view). */
async function againButton(page: Page): Promise<Frame> {
  const end = Date.now() + 60_000;
  for (;;) {
    for (const f of page.frames()) {
      const enabled = await f.evaluate(`(() => { const b = document.getElementById('btn-run-again'); return !!b && !b.hasAttribute('disabled') && b.getBoundingClientRect().height > 0; })()`).catch(() => false);
      if (enabled) return f;
    }
    if (Date.now() > end) throw new Error('no enabled Run Again in view');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function traces(file: string): RunTrace[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunTrace) : [];
}

/** `docker run --rm` to its first stdout line, ms. */
function dockerFirstLine(tag: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(DOCKER, ['run', '--rm', '--cpus', '0.5', '--memory', '128m', '-e', 'BYTENITE_RUN_ID=docker', tag], { env: DOCKER_ENV, stdio: ['ignore', 'pipe', 'ignore'] });
    let ms = NaN;
    child.stdout.once('data', () => (ms = performance.now() - t0));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 && !Number.isNaN(ms) ? resolve(ms) : reject(new Error(`docker run exited ${code}`))));
  });
}

type Start = 'hot' | 'warm' | 'cold';

/** The steps from a click to the painted line, each between two marks of the trace (extension/runs/run.ts StartMarks). */
type Mark = keyof StartMarks | 'firstLogAt' | 'firstLogAgentAt';

const STEPS: [label: string, from: Mark, to: Mark][] = [
  ['click to the command in the extension host', 'clickAt', 'commandAt'],
  ['command to the build options settled', 'commandAt', 'optionsAt'],
  ['build options to the context listed and hashed', 'optionsAt', 'contextAt'],
  ['context to `run.create` sent', 'contextAt', 'requestAt'],
  ['`run.create` sent to `run.accepted`', 'requestAt', 'acceptedAt'],
  ['`run.accepted` to the agent reading the container\'s first output (its log event\'s time)', 'acceptedAt', 'firstLogAgentAt'],
  ['that output to its log event in the extension', 'firstLogAgentAt', 'firstLogAt'],
  ['first log event to its postMessage to the panel', 'firstLogAt', 'postedAt'],
  ['postMessage to its arrival in the panel', 'postedAt', 'receivedAt'],
  ['arrival in the panel to its row inserted', 'receivedAt', 'insertedAt'],
  ['row inserted to that frame painted', 'insertedAt', 'paintedAt'],
];

function stepMs(t: RunTrace, from: Mark, to: Mark): number {
  const at = (k: Mark) => (k === 'firstLogAt' ? t.firstLogAt : k === 'firstLogAgentAt' ? t.firstLogAgentAt : t.marks?.[k]);
  const a = at(from);
  const b = at(to);
  return a === undefined || b === undefined ? NaN : b - a;
}

/** `step ms, …` of one traced run, for the log. */
function breakdown(t: RunTrace): string {
  return STEPS.map(([, from, to]) => stepMs(t, from, to).toFixed(0)).join(' + ');
}

interface Rows {
  /** Click to the frame that painted the run's first line, both on the panel's page clock. */
  ours: number[];
  theirs: number[];
  /** Click to the first log event in the extension host. */
  toEvent: number[];
  /** Per step of STEPS. */
  steps: number[][];
}

/**
 * One code-server session: the first run from the sidebar (not counted), then a warm-up and PAIRS Run Agains
 * of each kind in `kinds`, each followed by the terminal user's equivalent.
 */
async function session(work: string, vsix: string, tag: string, kinds: Start[], settings: Record<string, unknown>): Promise<Map<Start, Rows>> {
  const workspace = path.join(work, 'workspace');
  const ctx = path.join(workspace, path.dirname(DOCKERFILE));
  const traceFile = path.join(work, 'trace.jsonl');
  const browser = await launchBrowser(work);
  onCleanup(() => void browser.close());
  const cs = await startCodeServer({ dir: path.join(work, 'cs'), workspace, vsix, env: { BYTENITE_RUN_TRACE: traceFile }, settings });
  const page = await browser.newPage();
  const seen: string[] = [];
  const rows = new Map<Start, Rows>(kinds.map((k) => [k, { ours: [], theirs: [], toEvent: [], steps: STEPS.map(() => []) }]));
  let stamps = 0;
  try {
    await page.goto(`${cs.url}/?folder=${encodeURIComponent(workspace)}`);
    await page.getByRole('tab', { name: /ByteNite/ }).first().click({ timeout: 60_000 });
    const sidebar = await webviewWith(page, '#dockerfiles', 60_000);
    await sidebar.locator('.dockerfile-row', { hasText: DOCKERFILE }).locator('.run-dockerfile').click({ timeout: 60_000 });
    seen.push(await newLine(page, seen, 180_000));
    for (const kind of kinds) {
      for (let i = 0; i <= PAIRS; i++) {
        // The pool makes its next container after a run: give it the time a person takes to look at the log.
        await new Promise((r) => setTimeout(r, 2500));
        if (kind === 'cold') writeFileSync(path.join(ctx, 'stamp.txt'), `change ${++stamps}\n`);
        const frame = await againButton(page);
        const before = traces(traceFile).length;
        await frame.locator('#btn-run-again').click();
        const shown = await newLine(page, seen, 120_000);
        seen.push(shown);
        const end = Date.now() + 30_000;
        while (traces(traceFile).length <= before && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        const trace = traces(traceFile).at(-1)!;
        if (!shown.includes(trace.runId)) throw new Error(`the line in view (${shown}) is not the traced run's (${trace.runId})`);
        const painted = stepMs(trace, 'clickAt', 'paintedAt');
        if (Number.isNaN(painted)) throw new Error(`the trace of ${trace.runId} lacks the panel's click or paint mark: ${JSON.stringify(trace.marks)}`);
        // The terminal user's turn, on the same change.
        const built = kind === 'cold' ? (await runProcess(DOCKER, ['build', '-q', '-t', tag, ctx], { env: { ...DOCKER_ENV, DOCKER_BUILDKIT: '1' } })).ms : 0;
        const d = built + await dockerFirstLine(tag);
        log(`editor again (${kind}): ${i ? `pair ${i}/${PAIRS}` : 'warm-up'}: ${trace.start} start, click to painted ${painted.toFixed(0)} ms = ${breakdown(trace)}; ` +
          `${kind === 'cold' ? 'docker build + ' : ''}docker run ${d.toFixed(0)} ms`);
        if (i === 0) continue;
        if (trace.start !== kind) throw new Error(`Run Again ${i} started ${trace.start}, not ${kind}`);
        const r = rows.get(kind)!;
        r.ours.push(painted);
        r.theirs.push(d);
        r.toEvent.push(stepMs(trace, 'clickAt', 'firstLogAt'));
        STEPS.forEach(([, from, to], k) => r.steps[k].push(stepMs(trace, from, to)));
      }
    }
  } finally {
    await page.close().catch(() => {});
    await cs.stop();
    await browser.close().catch(() => {});
  }
  return rows;
}

export async function benchEditorAgain(): Promise<Result[]> {
  const name = (k: Start, base: string) => `6. editor: Run Again in the run panel to the new run's first line painted (${k}), vs ${base} to its first line`;
  if (!existsSync(CODE_SERVER)) return [notMeasured(name('hot', '`docker run --rm`'), 'ratio ≤ 0.1', 'code-server is not installed: run `bash scripts/setup.sh --tests`')];
  const work = tempDir('bytenite-bench-again-');
  log('editor again: packaging the extension');
  const vsix = packageVsix(work);
  const tag = `bytenite-bench-again:${BENCH_ID}`;
  const prepare = (dir: string) => {
    const ctx = makeContext(path.join(dir, 'workspace', path.dirname(DOCKERFILE)), CMD);
    writeFileSync(path.join(ctx, 'stamp.txt'), 'change 0\n');
    return ctx;
  };
  dockerBuild(prepare(path.join(work, 'a')), tag, 'buildkit');
  prepare(path.join(work, 'b'));
  onCleanup(() => removeImage(tag));
  const a = await session(path.join(work, 'a'), vsix, tag, ['hot', 'cold'], {});
  const b = await session(path.join(work, 'b'), vsix, tag, ['warm'], { 'bytenite.localAgent.hotPool': 0 });
  const hot = a.get('hot')!;
  const cold = a.get('cold')!;
  const warm = b.get('warm')!;
  return [
    comparison(name('hot', '`docker run --rm`'), hot.ours, hot.theirs, { ratio: 0.1 }),
    figure('6. editor: Run Again click to the first log event in the extension host (hot)', 'ms', hot.toEvent),
    ...STEPS.map(([label], k) => figure(`6. editor: hot Run Again, step ${k + 1}: ${label}`, 'ms', hot.steps[k])),
    comparison(name('warm', '`docker run --rm`'), warm.ours, warm.theirs),
    figure('6. editor: Run Again click to the first log event in the extension host (warm, `bytenite.localAgent.hotPool: 0`)', 'ms', warm.toEvent),
    comparison(name('cold', '`DOCKER_BUILDKIT=1 docker build` + `docker run --rm`'), cold.ours, cold.theirs),
    figure('6. editor: Run Again click to the first log event in the extension host (cold: one file changed)', 'ms', cold.toEvent),
  ];
}
