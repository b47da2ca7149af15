/**
 * The built webviews in a real Chromium, under the CSP the host writes, with VS Code stood in for by the
 * harness pages (panel.html, sidebar.html): what a user sees and can do, and how fast 100,000 lines show.
 * Skipped when Debian's Chromium is not installed. Run: npx tsx --test test/webview/webview.browser.test.ts
 * Screenshots and the measurement go to test-results/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { fakeFinal, fakeRun } from './fakeRun';
import type { RunInfo, SidebarState, ToPanel } from '../../webview/protocol';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROOT = resolve(__dirname, '../..');
const RESULTS = join(ROOT, 'test-results');

const RUN: RunInfo = {
  runId: 'r-abc123', name: 'examples/etl/Dockerfile', dockerfile: 'examples/etl/Dockerfile', agent: 'local',
  hardware: '2 vCPU · 4 GiB · $0.09/h', hourlyUsd: 0.09,
};

let browser: Browser;

async function open(file: 'panel.html' | 'sidebar.html', fresh = true): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.on('pageerror', (e) => assert.fail(`page error: ${e.message}`));
  await page.goto(`file://${join(ROOT, 'test/webview', file)}`);
  if (fresh) {
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
  }
  await page.waitForFunction(() => (window as unknown as { __posted: unknown[] }).__posted.length > 0);
  return page;
}

const posted = (page: Page) => page.evaluate(() => (window as unknown as { __posted: { type: string }[] }).__posted);
const send = (page: Page, m: ToPanel | { type: 'state'; state: SidebarState }) => page.evaluate((m) => window.postMessage(m, '*'), m);
const cspViolations = (page: Page) => page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations);

async function startRun(page: Page, lines: number, opts: { final?: boolean } = {}) {
  const events = fakeRun({ lines, t0: Date.now() - 60_000 });
  await send(page, { type: 'init', run: RUN, snapshot: { state: 'queued', lastSeq: 0 } });
  await send(page, { type: 'events', runId: RUN.runId, events: opts.final === false ? events.slice(0, -1) : events });
}

describe('webviews in Chromium', () => {
  before(async () => {
    // Never skipped: CI installs Chromium (scripts/install-editor-tools.sh); without it this suite must fail.
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run scripts/install-editor-tools.sh`);
    execFileSync('node', ['scripts/build.mjs'], { cwd: ROOT, stdio: 'ignore' });
    mkdirSync(RESULTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => browser?.close());

  test('the panel says ready, then shows phases, warm/cold, exit, cost and log lines, with no CSP violation', async () => {
    const page = await open('panel.html');
    assert.deepEqual(await posted(page), [{ type: 'ready', haveSeq: 0 }]);
    await startRun(page, 200);
    await page.locator('.log-line', { hasText: 'line 200 went to stderr' }).waitFor();
    assert.equal(await page.locator('#phases li.phase').count(), 6);
    assert.equal(await page.locator('#phases li[data-phase="build"] .phase-time').textContent(), '2.1 s');
    assert.equal((await page.locator('#start-kind').textContent())?.trim(), 'cold');
    assert.match(await page.locator('#exit-status').textContent() ?? '', /Exited with code 0/);
    assert.equal(await page.locator('#cost-total').textContent(), '$0.0004120');
    assert.match(await page.locator('#cost-reference').textContent() ?? '', /AWS Fargate/);
    assert.equal(await page.locator('.log-line.stream-stderr').first().locator('.ansi-fg-1').textContent(), 'warning');
    assert.ok(await page.locator('.log-line').count() < 100, 'only the rows on screen are in the DOM');
    await page.screenshot({ path: join(RESULTS, 'webview-panel.png') });
    assert.deepEqual(await cspViolations(page), []);
    await page.close();
  });

  test('the next run in the same panel (Run Again, Run on Save) starts with no cost and no chart of the last one', async () => {
    const page = await open('panel.html');
    await startRun(page, 20);
    await page.locator('#cost-total[data-final="true"]').waitFor();
    const next = { ...RUN, runId: 'r-def456' };
    await send(page, { type: 'init', run: next, snapshot: { state: 'running', lastSeq: 0 } });
    await send(page, { type: 'events', runId: next.runId, events: [{ seq: 1, at: Date.now(), event: { kind: 'running', startedAt: new Date().toISOString() } }] });
    await page.locator('#cost-total:not([data-final])').waitFor();
    assert.match(await page.locator('#cost-note').textContent() ?? '', /so far/);
    assert.equal(await page.locator('#cost-breakdown').isHidden(), true);
    assert.equal(await page.locator('#cost-reference').isHidden(), true);
    assert.equal(await page.locator('#stats-now').textContent(), 'No samples yet.');
    await page.close();
  });

  test('log text is text: markup in a line is shown, not parsed', async () => {
    const page = await open('panel.html');
    await send(page, { type: 'init', run: RUN, snapshot: { state: 'running', lastSeq: 0 } });
    await send(page, { type: 'events', runId: RUN.runId, events: [
      { seq: 1, at: Date.now(), event: { kind: 'log', stream: 'stdout', time: new Date().toISOString(), data: '<img src=x onerror="window.__pwned=1"><b>bold?</b>\n' } },
    ] });
    await page.locator('.log-line', { hasText: '<b>bold?</b>' }).waitFor();
    assert.equal(await page.locator('#log-view img, #log-view b').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.close();
  });

  test('an OOM kill is called out', async () => {
    const page = await open('panel.html');
    await send(page, { type: 'init', run: RUN, snapshot: { state: 'queued', lastSeq: 0 } });
    await send(page, { type: 'events', runId: RUN.runId, events: fakeRun({ lines: 5, oom: true }) });
    await page.locator('#exit-status[data-oom="true"]').waitFor();
    assert.match(await page.locator('#exit-status').textContent() ?? '', /Out of memory.*137.*4 GiB/);
    await page.close();
  });

  test('follow-tail stops when the user scrolls up and resumes at the bottom', async () => {
    const page = await open('panel.html');
    await startRun(page, 500, { final: false });
    await page.locator('.log-line', { hasText: 'line 500 ' }).waitFor();
    assert.equal(await page.locator('#log-follow').getAttribute('aria-pressed'), 'true');
    await page.locator('#log-view').hover();
    await page.mouse.wheel(0, -600);
    await page.waitForFunction(() => document.querySelector('#log-follow')?.getAttribute('aria-pressed') === 'false');
    const top = await page.locator('#log-view').evaluate((el) => el.scrollTop);
    const more = Array.from({ length: 50 }, (_, i) => ({ seq: 10_000 + i, at: Date.now(), event: { kind: 'log' as const, stream: 'stdout' as const, time: new Date().toISOString(), data: `later ${i}\n` } }));
    await send(page, { type: 'events', runId: RUN.runId, events: more });
    await page.waitForFunction(() => /50 new/.test(document.querySelector('#log-follow')?.textContent ?? ''));
    assert.equal(await page.locator('#log-view').evaluate((el) => el.scrollTop), top, 'the view stays where the user put it');
    await page.locator('#log-view').evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.waitForFunction(() => document.querySelector('#log-follow')?.getAttribute('aria-pressed') === 'true');
    await page.locator('.log-line', { hasText: 'later 49' }).waitFor();
    await page.close();
  });

  test('filter, timestamps and copy', async () => {
    const page = await open('panel.html');
    await startRun(page, 300);
    await page.locator('.log-line', { hasText: 'line 300 ' }).waitFor();
    await page.locator('#log-filter').locator('input').fill('went to stderr');
    await page.waitForFunction(() => /^30 of 301 lines/.test(document.querySelector('#log-count')?.textContent ?? ''));
    assert.equal(await page.locator('.log-line.stream-stdout').count(), 0);
    assert.equal(await page.locator('.log-line mark.log-match').first().textContent(), 'went to stderr');
    await page.locator('#log-timestamps').click();
    await page.locator('.log-line .log-time').first().waitFor();
    await page.locator('#log-copy').click();
    const copy = (await posted(page)).find((m) => m.type === 'copy') as { text: string; lines: number } | undefined;
    assert.equal(copy?.lines, 30);
    assert.match(copy?.text.split('\n')[0] ?? '', /^\d\d:\d\d:\d\d\.\d{3} warning: line 10 went to stderr$/);
    await page.close();
  });

  test('search without filtering: every line stays, Enter jumps from match to match', async () => {
    const page = await open('panel.html');
    await startRun(page, 1000);
    await page.locator('.log-line', { hasText: 'line 1000 ' }).waitFor();
    await page.locator('#log-only-matching').click();
    const input = page.locator('#log-filter').locator('input');
    await input.fill('line 251 ');
    await input.press('Enter');
    await page.waitForFunction(() => /^1 of 1 match · 1,001 lines$/.test(document.querySelector('#log-count')?.textContent ?? ''));
    assert.match(await page.locator('.log-line.current-hit').textContent() ?? '', /line 251 ok/);
    assert.equal(await page.locator('#log-follow').getAttribute('aria-pressed'), 'false');
    await input.fill('went to stderr');
    // From where the view is (line 251 a third of the way down): the first match below the top row, then the next.
    await input.press('Enter');
    await input.press('Enter');
    await page.waitForFunction(() => /^26 of 100 matches/.test(document.querySelector('#log-count')?.textContent ?? ''));
    assert.match(await page.locator('.log-line.current-hit').textContent() ?? '', /line 260 went to stderr/);
    await input.press('Shift+Enter');
    await input.press('Shift+Enter');
    await page.waitForFunction(() => /^24 of 100 matches/.test(document.querySelector('#log-count')?.textContent ?? ''));
    await page.close();
  });

  test('outputs the agent could not keep: the exit says so with the reason, and Open Outputs is off', async () => {
    const page = await open('panel.html');
    await send(page, { type: 'init', run: RUN, snapshot: { state: 'queued', lastSeq: 0 } });
    const reason = 'outputs not kept: they passed 49.0 MiB, more than the outputs budget of 48.0 MiB allows; raise it with `bytenite agent --outputs-budget SIZE`';
    const final = { ...fakeFinal(), outputs: { files: 0, bytes: 0, notKept: reason } };
    await send(page, { type: 'events', runId: RUN.runId, events: [{ seq: 1, at: Date.now(), event: final }] });
    await page.locator('#exit-status', { hasText: 'outputs not kept' }).waitFor();
    assert.match(await page.locator('#exit-status').textContent() ?? '', /Exited with code 0; outputs not kept/);
    assert.match(await page.locator('.run-outcome, #exit-status, body').first().textContent() ?? '', /--outputs-budget SIZE/);
    assert.equal(await page.locator('#btn-open-outputs').textContent(), 'Outputs not kept');
    assert.equal(await page.locator('#btn-open-outputs').getAttribute('disabled'), '');
    await page.close();
  });

  test('the buttons post stop, run again and open outputs', async () => {
    const page = await open('panel.html');
    await startRun(page, 10, { final: false });
    await page.locator('#btn-stop').click();
    await page.waitForFunction(() => document.querySelector('#btn-stop')?.hasAttribute('disabled'));
    await send(page, { type: 'events', runId: RUN.runId, events: fakeRun({ lines: 10 }).slice(-1) });
    await page.locator('#btn-run-again:not([disabled])').click();
    await page.locator('#btn-open-outputs:not([disabled])').click();
    const types = (await posted(page)).map((m) => m.type);
    assert.deepEqual(types, ['ready', 'stop', 'runAgain', 'openOutputs']);
    await page.close();
  });

  test('a reloaded panel restores from its saved state and asks only for what it lacks', async () => {
    const page = await open('panel.html');
    await startRun(page, 100);
    await page.locator('#exit-status[data-tone="ok"]').waitFor();
    await page.waitForFunction(() => sessionStorage.getItem('state')?.includes('"exitCode":0'));
    await page.reload(); // what VS Code does when a hidden panel is shown again
    await page.locator('.log-line', { hasText: 'line 100 went to stderr' }).waitFor();
    assert.match(await page.locator('#exit-status').textContent() ?? '', /Exited with code 0/);
    const ready = (await posted(page))[0] as { type: string; runId?: string; haveSeq: number };
    assert.equal(ready.runId, RUN.runId);
    assert.equal(ready.haveSeq, fakeRun({ lines: 100 }).length);
    // A run the host knows only from history (no events to replay): the restored lines stay.
    await send(page, { type: 'init', run: RUN, snapshot: { state: 'exited', lastSeq: 0 } });
    await send(page, { type: 'summary', runId: RUN.runId, final: fakeRun({ lines: 1 }).at(-1)!.event as never });
    await page.waitForTimeout(100);
    assert.equal(await page.locator('#log-count').textContent(), '101 lines');
    await page.close();
  });

  test('100,000 lines: time for the last line to show after it was posted', async () => {
    const page = await open('panel.html');
    await send(page, { type: 'init', run: RUN, snapshot: { state: 'running', lastSeq: 0 } });
    // Plain JS read from a file: functions compiled by tsx carry helpers the page does not have.
    const result = await page.evaluate(readFileSync(join(__dirname, 'measure100k.js'), 'utf8')) as Record<string, number | string>;
    writeFileSync(join(RESULTS, 'webview-100k.json'), JSON.stringify(result, null, 2));
    console.log('100,000 lines:', JSON.stringify(result));
    assert.equal(result.count, '100,000 lines');
    assert.ok(Number(result.rowsInDom) < 100);
    assert.ok(Number(result.lastLineShownAfterPostMs) < 3000, `last line took ${result.lastLineShownAfterPostMs} ms`);
    await page.screenshot({ path: join(RESULTS, 'webview-panel-100k.png') });
    await page.close();
  });

  test('the sidebar lists the agent, Dockerfiles and runs newest first, and its rows post actions', async () => {
    const page = await open('sidebar.html');
    assert.deepEqual(await posted(page), [{ type: 'ready' }]);
    const today = new Date();
    await send(page, { type: 'state', state: {
      agent: {
        name: 'local', kind: 'local', state: 'connected', disk: [
          { name: 'outputs', usedBytes: 3 * 2 ** 30, budgetBytes: 60 * 2 ** 30, flag: '--outputs-budget', note: '2 run(s), 1 not fetched yet' },
          { name: 'images', usedBytes: 19 * 2 ** 30, budgetBytes: 20 * 2 ** 30, flag: '--image-budget' },
        ],
      },
      dockerfiles: [{ id: 'file:///w/Dockerfile', path: 'Dockerfile', hardware: '2 vCPU · 4 GiB · $0.09/h' }, { id: 'file:///w/etl/Dockerfile', path: 'etl/Dockerfile' }],
      runs: [
        { runId: 'r-old001', name: 'Dockerfile', state: 'exited', exitCode: 0, start: 'cold', createdAt: '2025-12-01T10:00:00Z', durationMs: 4200, costUsd: 0.01 },
        { runId: 'r-new001', name: 'etl/Dockerfile', state: 'exited', exitCode: 137, oomKilled: true, start: 'warm', createdAt: today.toISOString(), durationMs: 61_000, costUsd: 0.002 },
      ],
      trusted: true,
    } });
    await page.locator('.run-row').first().waitFor();
    assert.deepEqual(await page.locator('.run-row').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.runId)), ['r-new001', 'r-old001']);
    assert.match(await page.locator('.run-row').first().textContent() ?? '', /out of memory.*warm.*1m 01s.*\$0\.002000/);
    assert.equal(await page.locator('#cost-today').textContent(), '$0.002000');
    assert.equal(await page.locator('#cost-overall').textContent(), '$0.0120');
    assert.equal(await page.locator('#agent').getAttribute('data-state'), 'connected');
    assert.deepEqual(await page.locator('.disk-part').allTextContents(), ['outputs3.0 GiB of 60.0 GiB', 'images19.0 GiB of 20.0 GiB']);
    assert.equal(await page.locator('.disk-part.near-full .disk-name').textContent(), 'images', 'a part near its budget stands out');
    await page.locator('.run-row').first().click();
    await page.locator('.dockerfile-row', { hasText: 'etl/Dockerfile' }).locator('.run-dockerfile').click();
    await page.locator('#agent button').click();
    assert.deepEqual((await posted(page)).slice(1), [
      { type: 'openRun', runId: 'r-new001' }, { type: 'runDockerfile', id: 'file:///w/etl/Dockerfile' }, { type: 'selectAgent' },
    ]);
    await page.screenshot({ path: join(RESULTS, 'webview-sidebar.png') });
    assert.deepEqual(await cspViolations(page), []);
    await page.close();
  });
});
