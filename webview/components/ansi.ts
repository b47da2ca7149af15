/**
 * ANSI escape handling for log lines: SGR colours and attributes become segments of plain text with a
 * style; every other escape (cursor moves, erase, OSC titles/hyperlinks, charset switches) is dropped.
 *
 * Why not ansi_up: it returns HTML with inline `style="..."` attributes (bold, 256 and true colours), which
 * a strict CSP (no 'unsafe-inline' styles) silently drops, and its colour state is private, while the log
 * view needs it to resume a line that arrives in parts. Segments are rendered with textContent, so the
 * text is never parsed as HTML: nothing to escape, nothing to inject.
 */

/** A colour: 0-15 is a theme colour (`--vscode-terminal-ansi*`), a string is a CSS `rgb(...)`. */
export type AnsiColor = number | string;

/** Immutable: every change makes a new object, so lines can share one. */
export interface AnsiStyle {
  readonly fg?: AnsiColor;
  readonly bg?: AnsiColor;
  readonly bold?: true;
  readonly faint?: true;
  readonly italic?: true;
  readonly underline?: true;
  readonly inverse?: true;
  readonly strike?: true;
}

export interface Segment {
  text: string;
  /** null: the default style. */
  style: AnsiStyle | null;
}

type Flag = 'bold' | 'faint' | 'italic' | 'underline' | 'inverse' | 'strike';

// Characters that need the slow path: ESC, CSI (C1), CR, backspace and the other C0 controls but tab.
// eslint-disable-next-line no-control-regex
const SPECIAL = /[\x00-\x08\x0b-\x1f\x7f\x9b]/;

/** True when a line needs no ANSI work at all (the common case, kept cheap for 100,000-line logs). */
export const isPlain = (s: string): boolean => !SPECIAL.test(s);

function cube(i: number): string {
  // xterm 256-colour palette: 16-231 a 6x6x6 cube, 232-255 a grey ramp.
  if (i >= 232) {
    const g = 8 + (i - 232) * 10;
    return `rgb(${g},${g},${g})`;
  }
  const n = i - 16;
  const level = (v: number) => (v === 0 ? 0 : 55 + v * 40);
  return `rgb(${level(Math.floor(n / 36))},${level(Math.floor(n / 6) % 6)},${level(n % 6)})`;
}

const byte = (s: string | undefined): number | undefined => {
  if (s === undefined || s === '') return undefined;
  const n = Number(s);
  return Number.isInteger(n) && n >= 0 && n <= 255 ? n : undefined;
};

function isDefault(s: AnsiStyle): boolean {
  for (const _ in s) return false;
  return true;
}

function without(s: AnsiStyle, ...keys: (keyof AnsiStyle)[]): AnsiStyle {
  const out: Record<string, unknown> = { ...s };
  for (const k of keys) delete out[k];
  return out as AnsiStyle;
}

// Logs repeat the same few escapes on every line: cache (style, params) -> style. Styles are immutable,
// so a cached result can be shared; the cache is dropped whole if a log uses unusually many styles.
const NO_STYLE = {};
let sgrCache = new WeakMap<object, Map<string, AnsiStyle | null>>();
let sgrCacheSize = 0;

/** Applies one SGR parameter list (the part between `ESC[` and `m`) to a style. */
export function applySgr(style: AnsiStyle | null, params: string): AnsiStyle | null {
  const key = style ?? NO_STYLE;
  let byParams = sgrCache.get(key);
  const hit = byParams?.get(params);
  if (hit !== undefined) return hit;
  const result = computeSgr(style, params);
  if (sgrCacheSize > 10_000) {
    sgrCache = new WeakMap();
    sgrCacheSize = 0;
    byParams = undefined;
  }
  if (!byParams) sgrCache.set(key, (byParams = new Map()));
  byParams.set(params, result);
  sgrCacheSize++;
  return result;
}

function computeSgr(style: AnsiStyle | null, params: string): AnsiStyle | null {
  // Colon sub-parameters (38:2::r:g:b) are read like semicolons.
  const p = params.split(/[;:]/);
  let s: AnsiStyle = style ?? {};
  const set = (k: Flag) => { s = { ...s, [k]: true }; };
  for (let i = 0; i < p.length; i++) {
    const n = p[i] === '' ? 0 : Number(p[i]);
    if (!Number.isInteger(n)) continue;
    if (n === 0) s = {};
    else if (n === 1) set('bold');
    else if (n === 2) set('faint');
    else if (n === 3) set('italic');
    else if (n === 4) set('underline');
    else if (n === 7) set('inverse');
    else if (n === 9) set('strike');
    else if (n === 22) s = without(s, 'bold', 'faint');
    else if (n === 23) s = without(s, 'italic');
    else if (n === 24) s = without(s, 'underline');
    else if (n === 27) s = without(s, 'inverse');
    else if (n === 29) s = without(s, 'strike');
    else if (n >= 30 && n <= 37) s = { ...s, fg: n - 30 };
    else if (n === 39) s = without(s, 'fg');
    else if (n >= 40 && n <= 47) s = { ...s, bg: n - 40 };
    else if (n === 49) s = without(s, 'bg');
    else if (n >= 90 && n <= 97) s = { ...s, fg: n - 90 + 8 };
    else if (n >= 100 && n <= 107) s = { ...s, bg: n - 100 + 8 };
    else if (n === 38 || n === 48) {
      const key = n === 38 ? 'fg' : 'bg';
      if (p[i + 1] === '5') {
        const c = byte(p[i + 2]);
        if (c !== undefined) s = { ...s, [key]: c < 16 ? c : cube(c) };
        i += 2;
      } else if (p[i + 1] === '2') {
        // 38;2;r;g;b, or with a colour-space id: 38:2::r:g:b (the empty id is skipped).
        let j = i + 2;
        if (p.length - j >= 4 && p[j] === '') j++;
        const [r, g, b] = [byte(p[j]), byte(p[j + 1]), byte(p[j + 2])];
        if (r !== undefined && g !== undefined && b !== undefined) s = { ...s, [key]: `rgb(${r},${g},${b})` };
        i = j + 2;
      }
    }
  }
  return isDefault(s) ? null : s;
}

/**
 * Parses one line (no `\n`) that starts in `style`; returns its segments and the style at its end, which
 * the next line of the same stream starts in (colour set on one line stays on, as in a terminal).
 * A `\r` inside the line returns the cursor to the start: what came before it is overwritten, the way
 * progress bars expect.
 */
export function parseLine(line: string, style: AnsiStyle | null): { segments: Segment[]; style: AnsiStyle | null } {
  const segments: Segment[] = [];
  let text = '';
  const flush = () => {
    if (text) segments.push({ text, style });
    text = '';
  };
  const len = line.length;
  let i = 0;
  while (i < len) {
    const c = line.charCodeAt(i);
    if (c === 0x1b || c === 0x9b) {
      // CSI: ESC [ (or C1 0x9b), parameters 0x30-0x3f, intermediates 0x20-0x2f, final 0x40-0x7e.
      const csi = c === 0x9b ? i + 1 : line[i + 1] === '[' ? i + 2 : -1;
      if (csi >= 0) {
        let j = csi;
        while (j < len && line.charCodeAt(j) >= 0x30 && line.charCodeAt(j) <= 0x3f) j++;
        const paramsEnd = j;
        while (j < len && line.charCodeAt(j) >= 0x20 && line.charCodeAt(j) <= 0x2f) j++;
        if (j >= len) break; // cut off: drop the rest
        if (line[j] === 'm' && paramsEnd === j) {
          flush();
          style = applySgr(style, line.slice(csi, paramsEnd));
        }
        i = j + 1;
        continue;
      }
      const next = line[i + 1];
      if (next === ']' || next === 'P' || next === '_' || next === '^' || next === 'X') {
        // OSC / DCS / APC / PM / SOS: up to BEL or ST (ESC \). An OSC 8 hyperlink keeps its visible text.
        let j = i + 2;
        while (j < len && line.charCodeAt(j) !== 0x07 && !(line.charCodeAt(j) === 0x1b && line[j + 1] === '\\')) j++;
        i = j >= len ? len : line.charCodeAt(j) === 0x07 ? j + 1 : j + 2;
        continue;
      }
      // ESC ( B and friends take one more character; any other ESC x is two characters.
      i += next === '(' || next === ')' || next === '*' || next === '+' || next === '#' ? 3 : 2;
      continue;
    }
    if (c === 0x0d) {
      if (i < len - 1) {
        segments.length = 0;
        text = '';
      }
      i++;
      continue;
    }
    if (c === 0x08) {
      // Backspace: erase the previous character of the current run, if any.
      text = text.slice(0, -1);
      i++;
      continue;
    }
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
      i++;
      continue;
    }
    // Copy a run of ordinary characters at once.
    let j = i + 1;
    while (j < len) {
      const d = line.charCodeAt(j);
      if (d === 0x1b || d === 0x9b || d === 0x0d || d === 0x08 || (d < 0x20 && d !== 0x09) || d === 0x7f) break;
      j++;
    }
    text += line.slice(i, j);
    i = j;
  }
  flush();
  return { segments, style };
}

/** The text a user reads and copies: escapes removed, `\r` overwrites applied. */
export function stripAnsi(line: string): string {
  if (isPlain(line)) return line;
  return parseLine(line, null).segments.map((s) => s.text).join('');
}

const NAMES = ['Black', 'Red', 'Green', 'Yellow', 'Blue', 'Magenta', 'Cyan', 'White'];

/** Theme variable of colour 0-15, e.g. `--vscode-terminal-ansiBrightRed`. */
export function themeColorVar(index: number): string {
  return `--vscode-terminal-ansi${index >= 8 ? 'Bright' : ''}${NAMES[index % 8]}`;
}

/** CSS classes for a style (colours 0-15 and attributes); rgb colours are set through CSSOM instead. */
export function styleClasses(style: AnsiStyle): string[] {
  const out: string[] = [];
  if (typeof style.fg === 'number') out.push(`ansi-fg-${style.fg}`);
  if (typeof style.bg === 'number') out.push(`ansi-bg-${style.bg}`);
  if (style.bold) out.push('ansi-bold');
  if (style.faint) out.push('ansi-faint');
  if (style.italic) out.push('ansi-italic');
  if (style.underline) out.push('ansi-underline');
  if (style.strike) out.push('ansi-strike');
  if (style.inverse) out.push('ansi-inverse');
  return out;
}
