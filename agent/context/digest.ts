/**
 * The context digest names what a build starts from, so an agent that already built an image from the same
 * digest can run it again without an upload or a build (a warm start). It covers everything that can change
 * the image and nothing else: every entry sent (type, path, permission bits, and the SHA-256 of a file's
 * content or a symlink's target), the Dockerfile's path and the build arguments. It leaves out modification
 * times, owners and the archive's byte layout, which COPY does not keep or which differ between two checkouts
 * of the same tree. The client computes it from its listing and the agent again from the archive it receives,
 * with this one function, and the agent refuses an upload whose archive gives a different digest.
 *
 * Encoding (v1): one line per record, each a JSON array (JSON escapes every newline and quote, so no path or
 * value can forge a record boundary): a version line, the entries sorted by path (UTF-8 byte order) as
 * `[type, path, mode, sha256 | linkTarget | ""]`, then `["dockerfile", path]`, then `["arg", name, value]`
 * per build argument, sorted by name. SHA-256 of the whole, in hex.
 */
import { createHash } from 'node:crypto';
import type { ContextEntry } from './listContext';

const VERSION_LINE = '["bytenite-context-digest",1]\n';

export function contextDigest(entries: readonly ContextEntry[], dockerfile: string, buildArgs: Record<string, string>): string {
  const hash = createHash('sha256');
  hash.update(VERSION_LINE);
  for (const e of [...entries].sort((a, b) => comparePaths(a.path, b.path))) {
    const content = e.type === 'file' ? e.sha256 : e.type === 'symlink' ? e.linkTarget : '';
    hash.update(`${JSON.stringify([e.type, e.path, e.mode, content])}\n`);
  }
  hash.update(`${JSON.stringify(['dockerfile', canonicalDockerfile(dockerfile)])}\n`);
  for (const name of Object.keys(buildArgs).sort(comparePaths)) {
    hash.update(`${JSON.stringify(['arg', name, buildArgs[name]])}\n`);
  }
  return hash.digest('hex');
}

/** `./Dockerfile` and `Dockerfile` build the same image, so they give the same digest. */
function canonicalDockerfile(p: string): string {
  return canonicalPath(p) ?? p;
}

/**
 * A relative archive path in its one spelling: `./a//b/` and `a/c/../b` are `a/b`; the root is `""`. Undefined
 * when `..` climbs above the root. The caller rejects absolute paths first.
 */
export function canonicalPath(p: string): string | undefined {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg !== '..') out.push(seg);
    else if (out.pop() === undefined) return undefined;
  }
  return out.join('/');
}

/**
 * Orders by Unicode code point, which is UTF-8 byte order, so any language can reproduce it. JS `<` compares
 * UTF-16 units, which differs only where a surrogate meets U+E000..U+FFFF: move surrogates above that range.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}
