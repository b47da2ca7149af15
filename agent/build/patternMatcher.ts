/**
 * Path patterns as moby's patternmatcher reads them (what `.dockerignore` and the engine's include/exclude
 * patterns mean): `*` and `?` stay within one path segment, `**` crosses any number of them, `[...]` is a
 * class, `\` escapes, a leading `!` makes an exception, and a path also matches when one of its parent
 * folders does. The last pattern that decides wins, so an exception after an exclusion brings a path back.
 */

interface Pattern {
  source: string;
  exclusion: boolean;
  re: RegExp;
  /** No wildcard or escape: the pattern names one path (lets a walk skip folders it cannot reach). */
  plain: boolean;
}

const SPECIAL = new Set(['.', '+', '(', ')', '|', '{', '}', '$', '^']);

/** Go's filepath.Clean for `/`-separated relative paths, as the patternmatcher applies it to each pattern. */
export function cleanPath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  return abs ? `/${joined}` : joined || '.';
}

function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++; // `**/` is `**`
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      if (i + 1 < pattern.length) re += `\\${pattern[++i]}`;
      else re += '\\\\';
    } else if (ch === '[' || ch === ']') {
      re += ch;
    } else if (SPECIAL.has(ch)) {
      re += `\\${ch}`;
    } else {
      re += ch;
    }
  }
  try {
    return new RegExp(`${re}$`);
  } catch {
    throw new Error(`the pattern ${JSON.stringify(pattern)} is not valid (check its [ ] brackets)`);
  }
}

export class PatternMatcher {
  private readonly patterns: Pattern[] = [];

  constructor(patterns: readonly string[]) {
    for (const raw of patterns) {
      let p = raw.trim();
      if (!p) continue;
      let exclusion = false;
      if (p.startsWith('!')) {
        exclusion = true;
        p = p.slice(1).trim();
        if (!p) throw new Error('illegal exclusion pattern: "!"');
      }
      p = cleanPath(p).replace(/^\/+/, '');
      this.patterns.push({ source: p, exclusion, re: compile(p), plain: !/[*?[\\]/.test(p) });
    }
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** Whether `file` (a clean relative `/` path) or one of its parent folders matches, exceptions applied in order. */
  matchesOrParentMatches(file: string): boolean {
    let matched = false;
    const parents = file.split('/').slice(0, -1);
    for (const pat of this.patterns) {
      // An inclusion cannot change a match, an exception cannot change a non-match.
      if (pat.exclusion !== matched) continue;
      let m = pat.re.test(file);
      for (let i = 0; !m && i < parents.length; i++) m = pat.re.test(parents.slice(0, i + 1).join('/'));
      if (m) matched = !pat.exclusion;
    }
    return matched;
  }

  /**
   * Whether some path below folder `dir` could match an inclusion (`exceptions`: an exception) of this list:
   * decides if a walk must look inside a folder that itself is left out. Plain patterns are checked by
   * prefix; any wildcard pattern may match anywhere, so then the answer is yes.
   */
  mayMatchBelow(dir: string, exceptions: boolean): boolean {
    const prefix = `${dir}/`;
    return this.patterns.some((p) => p.exclusion === exceptions && (!p.plain || p.source.startsWith(prefix)));
  }
}
