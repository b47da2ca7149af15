/**
 * Benchmark 6, the editor's own speed: Run Again in the run panel to the new run's first line in view, in
 * code-server with the packaged extension and its local agent, against `docker run --rm` of the same image
 * to its first line, alternating. The container prints `run $BYTENITE_RUN_ID` at once, so each run's line
 * is its own; the page is polled (every frame that has a log) for a line in view that no earlier run printed.
 * The first run (from the sidebar) builds; the agent's pool then holds a container of that kind, so the
 * Run Agains that follow start hot, as the extension's run trace confirms for each.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { launchBrowser } from '../test/editor/browser';
import { CODE_SERVER, startCodeServer } from '../test/editor/codeServer';
import { webviewWith } from '../test/editor/workbench';
import type { RunTrace } from '../extension/runs/runTrace';
import { BENCH_ID, DOCKER, DOCKER_ENV, PAIRS, Result, comparison, dockerBuild, figure, log, makeContext, notMeasured, onCleanup, removeImage, tempDir } from './lib';
import { packageVsix } from './editor';

const DOCKERFILE = 'again/Dockerfile';
const CMD = 'LABEL bytenite.cpus=0.5 bytenite.memory=128m\nCMD ["sh", "-c", "echo run $BYTENITE_RUN_ID"]\n';

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

/** Polls every frame until one shows a new `run …` line; returns it and the epoch ms it was seen. */
async function newLine(page: Page, seen: string[], timeoutMs: number): Promise<{ text: string; at: number }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      const text = (await f.evaluate(`(${NEW_LINE_IN_VIEW})(${JSON.stringify(seen)})`).catch(() => null)) as string | null;
      if (text) return { text, at: Date.now() };
    }
    if (Date.now() > end) throw new Error(`no new run line in view within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
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

export async function benchEditorAgain(): Promise<Result[]> {
  const name = '6. editor: Run Again in the run panel to the new run\'s first line in view (hot), vs `docker run --rm` to its first line';
  if (!existsSync(CODE_SERVER)) return [notMeasured(name, 'ratio ≤ 0.1', 'code-server is not installed: run `bash scripts/setup.sh --tests`')];
  const work = tempDir('bytenite-bench-again-');
  log('editor again: packaging the extension');
  const vsix = packageVsix(work);
  const workspace = path.join(work, 'workspace');
  const ctx = makeContext(path.join(workspace, path.dirname(DOCKERFILE)), CMD);
  const tag = `bytenite-bench-again:${BENCH_ID}`;
  dockerBuild(ctx, tag, 'buildkit');
  onCleanup(() => removeImage(tag));
  const traceFile = path.join(work, 'trace.jsonl');
  const browser = await launchBrowser(work);
  onCleanup(() => void browser.close());
  const cs = await startCodeServer({ dir: path.join(work, 'cs'), workspace, vsix, env: { BYTENITE_RUN_TRACE: traceFile } });
  const page = await browser.newPage();
  const seen: string[] = [];
  const ours: number[] = [];
  const theirs: number[] = [];
  const toEvent: number[] = [];
  try {
    await page.goto(`${cs.url}/?folder=${encodeURIComponent(workspace)}`);
    await page.getByRole('tab', { name: /ByteNite/ }).first().click({ timeout: 60_000 });
    const sidebar = await webviewWith(page, '#dockerfiles', 60_000);
    await sidebar.locator('.dockerfile-row', { hasText: DOCKERFILE }).locator('.run-dockerfile').click({ timeout: 60_000 });
    seen.push((await newLine(page, seen, 180_000)).text);
    for (let i = 0; i <= PAIRS; i++) {
      // The pool makes its next container after a run: give it the time a person takes to look at the log.
      await new Promise((r) => setTimeout(r, 2500));
      const frame = await againButton(page);
      const before = traces(traceFile).length;
      const clickedAt = Date.now();
      await frame.locator('#btn-run-again').click();
      const shown = await newLine(page, seen, 60_000);
      seen.push(shown.text);
      const end = Date.now() + 30_000;
      while (traces(traceFile).length <= before && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      const trace = traces(traceFile).at(-1)!;
      if (!shown.text.includes(trace.runId)) throw new Error(`the line in view (${shown.text}) is not the traced run's (${trace.runId})`);
      const d = await dockerFirstLine(tag);
      log(`editor again: ${i ? `pair ${i}/${PAIRS}` : 'warm-up'}: ${trace.start} start, click to line in view ${shown.at - clickedAt} ms ` +
        `(first log in the extension after ${trace.firstLogAt - clickedAt} ms); docker run ${d.toFixed(0)} ms`);
      if (i === 0) continue;
      if (trace.start !== 'hot') throw new Error(`Run Again ${i} started ${trace.start}, not hot`);
      ours.push(shown.at - clickedAt);
      theirs.push(d);
      toEvent.push(trace.firstLogAt - clickedAt);
    }
  } finally {
    await page.close().catch(() => {});
    await cs.stop();
    await browser.close().catch(() => {});
  }
  return [
    comparison(name, ours, theirs, { ratio: 0.1 }),
    figure('6. editor: Run Again click to the first log event in the extension host (hot)', 'ms', toEvent),
  ];
}
