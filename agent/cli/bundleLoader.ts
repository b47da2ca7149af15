/**
 * Loads the CLI's bundles (dist/bytenite-cli.js, dist/bytenite-agent.js) with V8's code cache kept in the
 * user's cache folder, as Node 22's module.enableCompileCache() would (Node 20 has none): V8 then skips
 * parsing and compiling the bundle and the functions the last start ran, which is most of what a warm
 * `bytenite run` spends before it connects. The cache is written once, at the exit of a run that found none
 * (or one V8 refused: another Node, other flags), and named after the bundle's size and mtime, so a rebuilt
 * bundle gets a fresh one (and the old one is removed). Each command has its own: the cache holds the
 * functions its run compiled, and the command modules load on demand (main.ts), so a cache that `--version`
 * or `runs` wrote would leave most of what `run` runs to be compiled at every start (seen: 245 KiB against
 * 527 KiB for one `run` wrote). Any trouble with the cache falls back to a plain compile: it only saves time.
 * BYTENITE_CODE_CACHE=0 turns it off.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';

/** The bundles that load each other by `require('./NAME')` (the client loads the agent on demand). */
const BUNDLES = new Set(['bytenite-cli.js', 'bytenite-agent.js']);
const loaded = new Map<string, { exports: unknown }>();
const STALE_MS = 30 * 24 * 3600 * 1000;

export function requireBundle(file: string): unknown {
  const known = loaded.get(file);
  if (known) return known.exports;
  const source = readFileSync(file, 'utf8');
  const cache = process.env.BYTENITE_CODE_CACHE === '0' ? undefined : cacheFile(file);
  const cachedData = cache ? readOrNothing(cache) : undefined;
  // The CommonJS wrapper, as Node's loader adds it, so the bundle sees its usual module scope.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file, cachedData,
  });
  if (cache && (!cachedData || script.cachedDataRejected)) {
    // At exit the cache also holds every function the run compiled, not only the top level.
    process.once('exit', () => writeCache(cache, script));
  }
  const module = { exports: {} };
  loaded.set(file, module);
  const dir = path.dirname(file);
  const nodeRequire = createRequire(file);
  const require = Object.assign(
    (id: string) => (id.startsWith('./') && BUNDLES.has(id.slice(2)) ? requireBundle(path.join(dir, id.slice(2))) : nodeRequire(id)),
    { resolve: nodeRequire.resolve, cache: nodeRequire.cache, main: nodeRequire.main },
  );
  (script.runInThisContext() as (...args: unknown[]) => void).call(module.exports, module.exports, require, module, file, dir);
  return module.exports;
}

/** The commands that keep a cache of their own; any other shares one. */
const CACHED_COMMANDS = new Set(['run', 'attach', 'hardware', 'runs', 'outputs', 'exec', 'agent']);

function cacheFile(file: string): string | undefined {
  try {
    const st = statSync(file);
    const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
    // Two installs (the extension's, a checkout's) each keep their own cache instead of replacing each other's.
    const name = `${path.basename(file, '.js')}-${createHash('sha256').update(file).digest('hex').slice(0, 12)}`;
    const arg = process.argv[2] ?? '';
    const command = CACHED_COMMANDS.has(arg) ? arg : 'other';
    return path.join(base, 'bytenite', 'code', `${name}--${st.size}-${Math.trunc(st.mtimeMs)}-${process.version}-${process.arch}--${command}.bin`);
  } catch {
    return undefined;
  }
}

function readOrNothing(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Written whole under a temporary name, then renamed: a concurrent start reads the old cache or the new one. */
function writeCache(cache: string, script: vm.Script): void {
  try {
    const dir = path.dirname(cache);
    mkdirSync(dir, { recursive: true });
    // NAME--BUILD--COMMAND.bin: this build's caches for other commands stay.
    const prefix = path.basename(cache).replace(/--.*$/, '--');
    const thisBuild = path.basename(cache).replace(/[^-]+\.bin$/, '');
    for (const old of readdirSync(dir)) {
      if (old === path.basename(cache) || old.startsWith(thisBuild)) continue;
      // This bundle's earlier builds, and any cache written over a month ago (a removed checkout's, an
      // old npx copy's: nothing else would remove them; one still in use is simply written again).
      const file = path.join(dir, old);
      if (old.startsWith(prefix) || Date.now() - statSync(file).mtimeMs > STALE_MS) rmSync(file, { force: true });
    }
    const tmp = `${cache}.${process.pid}.tmp`;
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, cache);
  } catch {
    // A cache folder we cannot write costs the next start its compile time, nothing else.
  }
}
