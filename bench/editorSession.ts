/**
 * One measured session of benchmark 5: code-server started on a fresh copy of the workspace (the packaged
 * extension already installed in its user data), the workbench opened in Chromium, the 100,000-line
 * Dockerfile run from the sidebar's Run button, and what the run panel shows timed against the moment the
 * extension host received the last line (the extension's BYTENITE_RUN_TRACE hook, extension/runs/runTrace.ts).
 * Then the panel is scrolled to the top and back, the line count read, and VS Code's activation time taken.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Frame } from 'playwright-core';
import { startCodeServer } from '../test/editor/codeServer';
import { activationTime, webviewWith } from '../test/editor/workbench';
import type { RunTrace } from '../extension/runs/runTrace';
import { ROOT, log } from './lib';

export const LINES = 100_000;
export const LAST_LINE = `line ${LINES}`;

export interface SessionSample {
  /** Last line in view in the panel, minus its arrival in the extension host (both epoch ms, one machine). */
  shownAfterArrivalMs: number;
  /** Run button click to the last line in view. */
  clickToShownMs: number;
  /** First to last container line arriving in the extension host. */
  arrivalSpanMs: number;
  /** Home key in the log to line 1 in view; End key back to the last line in view. */
  scrollTopMs: number;
  scrollBottomMs: number;
  activationMs: number;
  start: string;
}

/**
 * In the panel's document: whether the row with exactly `text` is inside the log's viewport. Source text,
 * not a function, so that no bundler helper leaks into the page.
 */
const IN_VIEW = `(text) => {
  const s = document.getElementById('log-view');
  if (!s) return false;
  const box = s.getBoundingClientRect();
  for (const el of s.querySelectorAll('.log-line .log-text')) {
    if (el.textContent !== text) continue;
    const r = el.getBoundingClientRect();
    return r.height > 0 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  }
  return false;
}`;

/**
 * Starts a check on every animation frame in the panel's document; `window[key]` gets the epoch ms `text` is
 * first in view. Returns the page's clock when the watch began. (Source text again: the webview's CSP allows
 * no eval, so Playwright's string predicates fail there, while `evaluate` of source text works.)
 */
function watch(panel: Frame, text: string, key: string): Promise<number> {
  return panel.evaluate(`(() => {
    const inView = ${IN_VIEW};
    window[${JSON.stringify(key)}] = undefined;
    const tick = () => { if (inView(${JSON.stringify(text)})) window[${JSON.stringify(key)}] = Date.now(); else requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    return Date.now();
  })()`) as Promise<number>;
}

/** The epoch ms a watch saw its line in view, waiting for it up to `timeoutMs`. */
async function seen(panel: Frame, key: string, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const at = (await panel.evaluate(`window[${JSON.stringify(key)}]`)) as number | undefined;
    if (at !== undefined) return at;
    if (Date.now() > end) throw new Error(`${key}: the line was not in view within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function readTrace(file: string, timeoutMs: number): Promise<RunTrace> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const line = existsSync(file) ? readFileSync(file, 'utf8').split('\n').find(Boolean) : undefined;
    if (line) return JSON.parse(line) as RunTrace;
    if (Date.now() > end) throw new Error(`the extension wrote no run trace to ${file} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function editorSession(opts: {
  browser: BrowserContext; dir: string; workspace: string; dockerfile: string; vsix?: string; traceFile: string;
}): Promise<SessionSample> {
  const cs = await startCodeServer({ dir: opts.dir, workspace: opts.workspace, vsix: opts.vsix, env: { BYTENITE_RUN_TRACE: opts.traceFile } });
  const page = await opts.browser.newPage();
  try {
    await page.goto(`${cs.url}/?folder=${encodeURIComponent(opts.workspace)}`);
    await page.getByRole('tab', { name: /ByteNite/ }).first().click({ timeout: 60_000 });
    const sidebar = await webviewWith(page, '#dockerfiles', 60_000);
    const run = sidebar.locator('.dockerfile-row', { hasText: opts.dockerfile }).locator('.run-dockerfile');
    await run.waitFor({ timeout: 60_000 });
    const clickedAt = Date.now();
    await run.click();
    // The workspace is new, so no earlier run panel is restored: the one panel with a log is this run's.
    const panel = await webviewWith(page, '#log-view', 60_000);
    const watchingSince = await watch(panel, LAST_LINE, '__benchLastShown');
    const shownAt = await seen(panel, '__benchLastShown', 180_000);
    const trace = await readTrace(opts.traceFile, 60_000);

    // Correctness: the whole output arrived, in the extension and in the panel, and the watch began in time.
    if (trace.kind !== 'exited') throw new Error(`the run ended ${trace.kind}, not exited`);
    if (trace.lines.stdout !== LINES || trace.lastLine !== LAST_LINE) {
      throw new Error(`the extension received ${trace.lines.stdout} stdout lines ending "${trace.lastLine}", not ${LINES} ending "${LAST_LINE}"`);
    }
    if (!(watchingSince < trace.firstLogAt)) throw new Error('the panel was found only after the first line arrived: lengthen the sleep before the burst');
    const total = Object.values(trace.lines).reduce((a, b) => a + b, 0);
    const countText = async () => ((await panel.locator('#log-count').textContent()) ?? '').trim();
    const end = Date.now() + 30_000;
    while ((await countText()) !== `${total.toLocaleString('en-US')} lines` && Date.now() < end) await page.waitForTimeout(100);
    if ((await countText()) !== `${total.toLocaleString('en-US')} lines`) throw new Error(`the panel counts "${await countText()}", not ${total} lines`);

    // Still scrollable: Home shows line 1, End shows the last line again.
    let t = await watch(panel, 'line 1', '__benchFirstShown');
    await panel.locator('#log-view').press('Home');
    const scrollTopMs = (await seen(panel, '__benchFirstShown', 30_000)) - t;
    t = await watch(panel, LAST_LINE, '__benchLastShownAgain');
    await panel.locator('#log-view').press('End');
    const scrollBottomMs = (await seen(panel, '__benchLastShownAgain', 30_000)) - t;

    const activation = await activationTime(page);
    if (activation.ms === undefined) throw new Error(`no activation time in: ${activation.text}`);
    const sample: SessionSample = {
      shownAfterArrivalMs: shownAt - trace.lastLogAt, clickToShownMs: shownAt - clickedAt,
      arrivalSpanMs: trace.lastLogAt - trace.firstLogAt, scrollTopMs, scrollBottomMs, activationMs: activation.ms, start: trace.start,
    };
    log(`editor: ${JSON.stringify(sample)}`);
    return sample;
  } catch (err) {
    // The session's folder goes with the suite's cleanup: keep what explains the failure in bench/tmp/.
    const keep = path.join(ROOT, 'bench', 'tmp');
    mkdirSync(keep, { recursive: true });
    await page.screenshot({ path: path.join(keep, 'editor-failed.png') }).catch(() => {});
    copyFileSync(cs.logFile, path.join(keep, 'editor-code-server.log'));
    throw new Error(`${(err as Error).message} (see bench/tmp/editor-failed.png and editor-code-server.log)`);
  } finally {
    await page.close().catch(() => {});
    await cs.stop();
  }
}
