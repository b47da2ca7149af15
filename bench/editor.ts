/**
 * Benchmark 5, the editor, in a real VS Code: code-server 4.100.3 (scripts/install-editor-tools.sh) driven by
 * playwright-core and Debian's Chromium, with the packaged .vsix installed, running a container on the local
 * agent the extension starts. The container waits 3 s (so the panel is open and watched before the first
 * line), then prints 100,000 lines as fast as it can. Measured per session (one warm-up, then
 * BENCH_EDITOR_RUNS, default 3, each in a freshly started code-server):
 *   - the last line in view in the run panel, after its arrival in the extension host (target ≤ 2 s);
 *   - Home / End in the log: line 1, then the last line, in view (the panel stays scrollable);
 *   - VS Code's own activation time (Developer: Show Running Extensions).
 * Every session checks that the extension received all 100,000 lines and that the panel counts them.
 * Bundle sizes are those of the production build inside the .vsix (`npm run package`), what users install.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { launchBrowser } from '../test/editor/browser';
import { CODE_SERVER } from '../test/editor/codeServer';
import { editorSession, LINES, type SessionSample } from './editorSession';
import { ROOT, Result, figure, log, makeContext, notMeasured, onCleanup, tempDir } from './lib';
import { vsixEntries } from './vsixEntries';

const RUNS = Math.max(1, Number(process.env.BENCH_EDITOR_RUNS ?? 3));
const TARGET_MS = 2000;
const DOCKERFILE = 'logs100k/Dockerfile';
const LABELS = 'LABEL bytenite.cpus=1 bytenite.memory=256m\n';
/**
 * Seconds the container waits before the burst, so that the bench watches the panel before the first line.
 * 3 s was too short for the first session of a fresh clone (code-server's first webview load).
 */
const SLEEP_S = 8;
const CMD = `CMD ["sh", "-c", "sleep ${SLEEP_S}; seq 1 ${LINES} | sed 's/^/line /'"]\n`;

/** `npm run package` (production build, then vsce); returns a copy of the .vsix and puts the development build back. */
export function packageVsix(work: string): string {
  const r = spawnSync('npm', ['run', '--silent', 'package'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error('npm run package failed');
  const vsix = path.join(work, 'bytenite.vsix');
  copyFileSync(path.join(ROOT, 'dist', 'bytenite.vsix'), vsix);
  // The rest of `npm run bench` (and whoever shares this tree) had the development build in dist/.
  spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'ignore' });
  return vsix;
}

function bundleRows(vsix: string): Result[] {
  const note = 'production build, as installed from the .vsix';
  const rows = vsixEntries(vsix)
    .filter((e) => /^extension\/dist\/.*\.(js|css)$/.test(e.name))
    .map((e) => figure(`5. bundle size: ${e.name.slice('extension/'.length)}`, 'bytes', [e.size], undefined, `${note}; ${Math.round(e.compressedSize / 1024)} KiB compressed`));
  rows.push(figure('5. bundle size: the .vsix download', 'bytes', [statSync(vsix).size]));
  return rows;
}

export async function benchEditor(): Promise<Result[]> {
  const work = tempDir('bytenite-bench-editor-');
  log('editor: packaging the extension');
  const vsix = packageVsix(work);
  const results = bundleRows(vsix);
  if (!existsSync(CODE_SERVER)) {
    const why = 'code-server is not installed: run `bash scripts/setup.sh --tests`';
    return [notMeasured('5. editor: 100,000 lines, last one shown after its arrival', `≤ ${TARGET_MS / 1000} s`, why),
      notMeasured('5. editor: extension activation time', '', why), ...results];
  }
  const browser = await launchBrowser(work);
  onCleanup(() => void browser.close());
  const csDir = path.join(work, 'code-server');
  mkdirSync(csDir, { recursive: true });
  const samples: SessionSample[] = [];
  try {
    for (let i = 0; i <= RUNS; i++) {
      log(`editor: ${i === 0 ? 'warm-up' : `run ${i}/${RUNS}`}`);
      // A fresh workspace folder each time: no run panel of an earlier session is restored into it.
      const workspace = path.join(work, `workspace-${i}`);
      makeContext(path.join(workspace, path.dirname(DOCKERFILE)), LABELS + CMD);
      const s = await editorSession({
        browser, dir: csDir, workspace, dockerfile: DOCKERFILE, vsix: i === 0 ? vsix : undefined,
        traceFile: path.join(work, `trace-${i}.jsonl`),
      });
      if (i > 0) samples.push(s);
    }
  } finally {
    await browser.close().catch(() => {});
  }
  const pick = (k: keyof SessionSample) => samples.map((s) => s[k] as number);
  const starts = [...new Set(samples.map((s) => s.start))].join('/');
  const how = `code-server 4.100.3 + Chromium, ${starts} start`;
  return [
    figure(`5. editor: ${LINES.toLocaleString('en-US')} lines, last one in view after its arrival in the extension`, 'ms',
      pick('shownAfterArrivalMs'), TARGET_MS, `${how}; all lines counted in the panel`),
    figure('5. editor: the lines\' arrival in the extension, first to last', 'ms', pick('arrivalSpanMs')),
    figure('5. editor: Run click to the last line in view', 'ms', pick('clickToShownMs'), undefined, `includes the ${SLEEP_S} s sleep before the burst`),
    figure('5. editor: Home in the log to line 1 in view', 'ms', pick('scrollTopMs')),
    figure('5. editor: End in the log to the last line in view', 'ms', pick('scrollBottomMs')),
    figure('5. editor: extension activation time', 'ms', pick('activationMs'), undefined, 'as VS Code measures it: Developer: Show Running Extensions'),
    ...results,
  ];
}
