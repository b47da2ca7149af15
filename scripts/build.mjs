// One esbuild script, one bundle per runtime: the agent + CLI (Node), the extension host (Node, `vscode`
// external) and the webviews (browser). Entries whose source does not exist yet are skipped.
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning', legalComments: 'none' };

const targets = [
  {
    // The `bytenite` CLI and the agent it embeds. ssh2's optional native helper is not needed for a local socket.
    entryPoints: { bytenite: 'agent/cli/main.ts' },
    platform: 'node', target: 'node20', format: 'cjs', outdir: 'dist',
    external: ['cpu-features', '*.node'],
  },
  {
    entryPoints: { extension: 'extension/main.ts' },
    platform: 'node', target: 'node20', format: 'cjs', outdir: 'dist',
    external: ['vscode', 'cpu-features', '*.node'],
  },
  {
    entryPoints: { panel: 'webview/panel/main.ts', sidebar: 'webview/sidebar/main.ts' },
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
    }
  }
}
