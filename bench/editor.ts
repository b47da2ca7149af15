/**
 * Benchmark 5, the editor. The latency of 100,000 log lines in the run panel and the activation time need a
 * real VS Code (code-server + Playwright); test/editor/ drives one for its test suites but offers no entry
 * point a benchmark can call yet, so those rows say "not measured yet" rather than fail. Bundle sizes need
 * nothing but the build, so they are measured here.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT, Result, figure, notMeasured } from './lib';

export async function benchEditor(): Promise<Result[]> {
  const results: Result[] = [
    notMeasured('5. editor: 100,000 lines, last one shown after its arrival', '≤ 2 s',
      'needs a code-server driver usable outside test/editor/run.ts'),
    notMeasured('5. editor: extension activation time', '', 'needs a code-server driver usable outside test/editor/run.ts'),
  ];
  for (const f of ['dist/extension.js', 'dist/webview/panel.js', 'dist/webview/sidebar.js', 'dist/bytenite.js']) {
    const p = path.join(ROOT, f);
    if (existsSync(p)) results.push(figure(`5. bundle size: ${f}`, 'bytes', [statSync(p).size], undefined, 'development build'));
  }
  return results;
}
