/**
 * What the UI suite and the editor benchmark (bench/editor.ts) both do in the code-server workbench: find a
 * webview's inner document, run a command from the palette, read VS Code's own activation time.
 */
import type { Frame, Page } from 'playwright-core';

/** Inner documents of the loaded webviews (each is two iframes deep), skipping ones replaced while we look. */
async function webviewFrames(page: Page): Promise<Frame[]> {
  const frames: Frame[] = [];
  for (const outer of await page.locator('iframe.webview.ready').elementHandles()) {
    try {
      const frame = await (await (await outer.contentFrame())?.$('#active-frame'))?.contentFrame();
      if (frame) frames.push(frame);
    } catch {
      // a webview that was replaced while we looked (its frame detached): the next look finds the new one
    }
  }
  return frames;
}

/** The inner document of the webview for which `match` says yes, polled until `timeoutMs`. */
async function webviewWhere(page: Page, match: (f: Frame) => Promise<boolean>, what: string, timeoutMs: number): Promise<Frame> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const frame of await webviewFrames(page)) {
      if (await match(frame).catch(() => false)) return frame;
    }
    if (Date.now() > end) throw new Error(`no webview ${what} within ${timeoutMs} ms`);
    await page.waitForTimeout(250);
  }
}

/** The inner document of the webview whose page has `selector`. */
export function webviewWith(page: Page, selector: string, timeoutMs = 60_000): Promise<Frame> {
  return webviewWhere(page, async (f) => (await f.$(selector)) !== null, `with ${selector}`, timeoutMs);
}

/** The inner document of the webview where `selector` has text matching `text`. */
export function webviewWithText(page: Page, selector: string, text: RegExp, timeoutMs: number): Promise<Frame> {
  return webviewWhere(page, async (f) => (await f.locator(selector, { hasText: text }).count()) > 0,
    `where ${selector} matches ${text}`, timeoutMs);
}

/** Runs a command by its palette title (F1, type, pick the row). */
export async function runCommand(page: Page, title: string): Promise<void> {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  // Focus can move just as the palette opens (a terminal's first prompt, a webview that loads), which closes
  // it, as it would for a user, who opens it again: so does this, twice at most (CI7 saw it closed after a
  // shell test).
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible' });
    try {
      await input.fill(`>${title}`, { timeout: 5_000 });
      await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().click({ timeout: 15_000 });
      return;
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
}

/**
 * VS Code's own measurement of the extension's activation, from Developer: Show Running Extensions: the
 * row's text (`ByteNite 0.1.0 … Activation: 66ms`) and the milliseconds in it.
 */
export async function activationTime(page: Page, extensionName = 'ByteNite'): Promise<{ text: string; ms: number | undefined }> {
  await runCommand(page, 'Developer: Show Running Extensions');
  const row = page.locator('.runtime-extensions-editor .monaco-list-row', { hasText: extensionName }).first();
  await row.waitFor({ timeout: 30_000 });
  const text = (await row.innerText()).replace(/\s+/g, ' ');
  const m = /Activation:\s*(\d+)\s*ms/.exec(text) ?? /(\d+)\s*ms/.exec(text);
  return { text, ms: m ? Number(m[1]) : undefined };
}
