/**
 * Applies a bundle's CSS without anything a strict CSP blocks: a constructed stylesheet where the browser
 * has them (VS Code's Chromium does), else a <style> with the nonce of the script that loaded us.
 */

// Read while the bundle's script runs: `document.currentScript` is null once it has finished.
const scriptNonce = (document.currentScript as HTMLScriptElement | null)?.nonce ?? '';

export function adoptStyles(...css: string[]): void {
  const text = css.join('\n');
  if ('adoptedStyleSheets' in Document.prototype && 'replaceSync' in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(text);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    return;
  }
  const style = document.createElement('style');
  if (scriptNonce) style.nonce = scriptNonce;
  style.textContent = text;
  document.head.append(style);
}
