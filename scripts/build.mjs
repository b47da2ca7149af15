// One esbuild script, one bundle per runtime: the agent + CLI (Node), the extension host (Node, `vscode`
// external) and the webviews (browser). Entries whose source does not exist yet are skipped.
import * as esbuild from 'esbuild';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', legalComments: 'none' };

/**
 * The CLI's client bundle leaves the agent out: loadAgentSide()'s import of ./agentSide becomes a require of
 * the agent bundle beside it, read only by `bytenite agent` and the embedded agent.
 */
const agentSideApart = {
  name: 'agent-side-apart',
  setup(build) {
    build.onResolve({ filter: /^\.\/agentSide$/ }, (args) =>
      path.basename(args.importer) === 'loadAgentSide.ts' ? { path: './bytenite-agent.js', external: true } : undefined);
  },
};

/**
 * zod re-exports every locale it has (z.locales: 360 KiB, a third of the client bundle) and uses only English,
 * which its schemas import on their own; we never pick another. Each CLI start parsed them for nothing.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}node_modules${path.sep}zod${path.sep}`)
        ? { path: path.join(path.dirname(args.importer), '../locales/en.js'), namespace: 'zod-locales' } : undefined);
    build.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`, resolveDir: path.dirname(args.path),
    }));
  },
};

/**
 * docker-modem loads ssh2 (an SSH client in JavaScript, a fifth of the agent bundle) at its top for its own
 * `ssh://` transport. We never use it: engines over SSH go through the user's `ssh` (agent/engine/sshDial.ts),
 * which reads their ~/.ssh/config. Every agent start and the extension host parsed it for nothing.
 */
const noModemSsh = {
  name: 'no-docker-modem-ssh',
  setup(build) {
    build.onResolve({ filter: /^\.\/ssh$/ }, (args) =>
      args.importer.includes(`${path.sep}docker-modem${path.sep}lib${path.sep}`) ? { path: 'modem-ssh', namespace: 'no-modem-ssh' } : undefined);
    build.onLoad({ filter: /.*/, namespace: 'no-modem-ssh' }, () => ({
      contents: `module.exports = function () { throw new Error('docker-modem ssh is not bundled: ssh:// engines go through agent/engine/sshDial.ts'); };`,
    }));
  },
};

const targets = [
  {
    // What `node dist/bytenite.js` runs: loads the bundles below with V8's code cache (agent/cli/bundleLoader.ts).
    entryPoints: { bytenite: 'agent/cli/launcher.ts' },
    platform: 'node', target: 'node20', format: 'cjs', outdir: 'dist',
  },
  {
    // The `bytenite` CLI as a client: run, attach, runs, hardware. What it loads is on the path of every run.
    entryPoints: { 'bytenite-cli': 'agent/cli/main.ts' },
    platform: 'node', target: 'node20', format: 'cjs', outdir: 'dist',
    plugins: [agentSideApart, zodEnglishOnly],
    // import() of the agent bundle as a plain require: it is CommonJS, and Node's ESM loader would only add work.
    supported: { 'dynamic-import': false },
  },
  {
    // The agent the CLI serves or embeds.
    entryPoints: { 'bytenite-agent': 'agent/cli/agentSide.ts' },
    platform: 'node', target: 'node20', format: 'cjs', outdir: 'dist',
    plugins: [zodEnglishOnly, noModemSsh],
  },
  {
    entryPoints: { extension: 'extension/main.ts' },
    platform: 'node', target: 'node20', format: 'cjs', outdir: 'dist',
    external: ['vscode', 'cpu-features', '*.node'],
  },
  {
    entryPoints: { panel: 'webview/panel/main.ts', sidebar: 'webview/sidebar/main.ts', endpoint: 'webview/endpoint/main.ts' },
    platform: 'browser', target: 'es2022', format: 'iife', outdir: 'dist/webview',
    loader: { '.css': 'text' },
  },
];

const builds = [];
for (const t of targets) {
  const entries = Object.fromEntries(Object.entries(t.entryPoints).filter(([, src]) => existsSync(src)));
  if (Object.keys(entries).length === 0) continue;
  const options = { ...common, ...t, entryPoints: entries, metafile: true };
  if (watch) {
    const ctx = await esbuild.context(options);
    await ctx.watch();
  } else {
    builds.push(esbuild.build(options));
  }
}
const results = await Promise.all(builds);
if (!watch) {
  for (const r of results) {
    for (const [file, info] of Object.entries(r.metafile.outputs)) {
      if (!file.endsWith('.map')) console.log(`${file}  ${(info.bytes / 1024).toFixed(0)} KiB`);
      if (file === 'dist/bytenite-cli.js') {
        checkClientOnly(info.inputs);
        // Minified, esbuild's init_* names are gone; the development build (every test run's) checks it.
        if (!production) checkSchemasLazy(file);
      }
    }
  }
}

/** A static import of agent code from a client module would silently put it back on every run's path. */
function checkClientOnly(inputs) {
  const agentOnly = Object.keys(inputs).filter((f) => /node_modules\/(dockerode|docker-modem|pino)\/|^agent\/(server|session)\.ts$/.test(f));
  if (agentOnly.length) {
    console.error(`dist/bytenite-cli.js must stay a client; it now includes ${agentOnly.slice(0, 3).join(', ')}: import agent code through loadAgentSide()`);
    process.exitCode = 1;
  }
}

/**
 * The client builds the protocol's schemas only when protocolSchemas() first asks (agent/protocol/parse.ts):
 * a static import of agent/protocol (its index) or of messages.ts from a client module would build them at
 * every start again. esbuild then calls the module's init from the importer's top level as well.
 */
function checkSchemasLazy(file) {
  const inits = readFileSync(file, 'utf8').match(/\binit_messages\(\)/g)?.length ?? 0;
  if (inits !== 1) {
    console.error(`${file}: agent/protocol/messages.ts is initialised from ${inits} places, not only by protocolSchemas(): import values from agent/protocol/parse, version or finalEvent, and types with \`import type\``);
    process.exitCode = 1;
  }
}
