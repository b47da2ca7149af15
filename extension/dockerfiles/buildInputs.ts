/**
 * What a Dockerfile's text says about its build's inputs, read without the engine: the context paths its
 * COPY/ADD instructions take, its named stages, the ids of its secret mounts. The extension uses them to
 * pick the build context (and to notice a Dockerfile written for another one before anything is uploaded),
 * to offer a stage and to offer the secrets the Dockerfile asks for. No vscode here: unit-tested as is.
 */
import * as path from 'node:path';
import { instructions } from './labels';

/** Splits an instruction's arguments into its leading flags and the rest: the JSON form `["a", "b"]`, or words. */
function args(rest: string): { flags: string[]; words: string[] } {
  const flags: string[] = [];
  let t = rest.trim();
  for (let m = /^(--\S+)\s*/.exec(t); m; m = /^(--\S+)\s*/.exec(t)) {
    flags.push(m[1]);
    t = t.slice(m[0].length);
  }
  if (t.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(t);
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) return { flags, words: parsed };
    } catch {
      // not JSON after all: read it as words, as docker does
    }
  }
  return { flags, words: t.split(/\s+/).filter(Boolean) };
}

/** The instruction's keyword (upper case) and the rest of it. */
function split(text: string): { keyword: string; rest: string } {
  const m = /^(\S+)\s*(.*)$/s.exec(text);
  return { keyword: (m?.[1] ?? '').toUpperCase(), rest: m?.[2] ?? '' };
}

/**
 * The context paths COPY and ADD read, relative to the context root, `/`-separated, each once. Left out: what
 * comes from another stage or image (`--from`), URLs and git sources of ADD, heredocs, paths with a variable
 * (their value is not known here), `.` (always there) and paths that climb out (docker refuses them anyway). A
 * pattern (`src/*.ts`) stands for the folder before its first wildcard, or is left out when there is none.
 */
export function copySources(text: string): string[] {
  const out = new Set<string>();
  for (const ins of instructions(text)) {
    const { keyword, rest } = split(ins.text);
    if (keyword !== 'COPY' && keyword !== 'ADD') continue;
    const { flags, words } = args(rest);
    if (flags.some((f) => /^--from=/i.test(f))) continue;
    for (const src of words.slice(0, -1)) {
      if (src.startsWith('<<') || src.includes('$')) continue;
      if (keyword === 'ADD' && (/^[a-z][a-z0-9+.-]*:\/\//i.test(src) || /^git@/.test(src))) continue;
      const p = contextPath(src);
      if (p !== undefined) out.add(p);
    }
  }
  return [...out];
}

function contextPath(src: string): string | undefined {
  let p = path.posix.normalize(src.replaceAll('\\', '/')).replace(/^\/+/, '').replace(/\/+$/, '');
  if (p === '.' || p === '' || p === '..' || p.startsWith('../')) return undefined;
  const segs = p.split('/');
  const wild = segs.findIndex((s) => /[*?[]/.test(s));
  if (wild === 0) return undefined;
  if (wild > 0) p = segs.slice(0, wild).join('/');
  return p;
}

/** The sources that are not in a folder, given a test of whether a relative path exists there. */
export function missingSources(sources: readonly string[], exists: (rel: string) => boolean): string[] {
  return sources.filter((s) => !exists(s));
}

/**
 * Whether to propose the workspace folder as the context of a Dockerfile that has none chosen: some of its
 * sources are missing from its own folder and none is missing from the workspace folder (a monorepo's
 * `services/api/Dockerfile`, written for `docker build -f services/api/Dockerfile .`). Gives the missing ones.
 */
export function proposeWorkspaceContext(
  sources: readonly string[], inDockerfileFolder: (rel: string) => boolean, inWorkspaceFolder: (rel: string) => boolean,
): string[] | undefined {
  const missing = missingSources(sources, inDockerfileFolder);
  if (missing.length === 0) return undefined;
  return missingSources(sources, inWorkspaceFolder).length === 0 ? missing : undefined;
}

/** The names of the Dockerfile's stages (`FROM image AS name`), in order, as written. */
export function stageNames(text: string): string[] {
  const names: string[] = [];
  for (const ins of instructions(text)) {
    const { keyword, rest } = split(ins.text);
    if (keyword !== 'FROM') continue;
    const { words } = args(rest);
    if (words.length === 3 && words[1].toUpperCase() === 'AS') names.push(words[2]);
  }
  return names;
}

/**
 * The ids of the secrets `RUN --mount=type=secret` asks for: its `id`, or the base name of its `target`
 * (docker's default), each once.
 */
export function secretIds(text: string): string[] {
  const out = new Set<string>();
  for (const ins of instructions(text)) {
    const { keyword, rest } = split(ins.text);
    if (keyword !== 'RUN') continue;
    for (const m of rest.matchAll(/--mount=(\S+)/g)) {
      const opts = new Map<string, string>();
      for (const kv of m[1].split(',')) {
        const eq = kv.indexOf('=');
        opts.set((eq < 0 ? kv : kv.slice(0, eq)).toLowerCase(), eq < 0 ? '' : kv.slice(eq + 1));
      }
      if (opts.get('type') !== 'secret') continue;
      const target = opts.get('target') ?? opts.get('dst') ?? opts.get('destination');
      const id = opts.get('id') || (target ? path.posix.basename(target) : undefined);
      if (id) out.add(id);
    }
  }
  return [...out];
}
