/**
 * `npm run bench`: every benchmark, ByteNite and its baseline alternating run by run, medians and the
 * median of the pair-by-pair ratios, each against the target. Writes bench/results.json and
 * bench/results.md. BENCH_PAIRS=N sets the counted pairs (default 7); BENCH_ONLY=first,context,cache,logs,many,editor,again,outputs,ports,endpoints,keys
 * runs a subset (and then writes its results to bench/results.partial.*, keeping the full table).
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchFirstLine } from './firstLine';
import { benchBuildContext } from './buildContext';
import { benchLogThroughput } from './logThroughput';
import { benchManyRuns } from './manyRuns';
import { benchEditor } from './editor';
import { benchOutputs } from './outputs';
import { benchPorts } from './ports';
import { benchCacheMount } from './cacheMount';
import { benchEditorAgain } from './editorAgain';
import { benchEndpoints } from './endpoints';
import { benchKeystrokes } from './keystrokes';
import { PAIRS, Result, cleanupAll, ensureBaseImage, formatValue, log, notMeasured, tempDir } from './lib';

const BENCHMARKS: [string, () => Promise<Result[]>][] = [
  ['first', benchFirstLine],
  ['context', benchBuildContext],
  ['cache', benchCacheMount],
  ['logs', benchLogThroughput],
  ['many', benchManyRuns],
  ['editor', benchEditor],
  ['again', benchEditorAgain],
  ['outputs', benchOutputs],
  ['ports', benchPorts],
  ['endpoints', benchEndpoints],
  ['keys', benchKeystrokes],
];

function row(r: Result): string {
  const ratio = Number.isNaN(r.medianRatio) ? '—' : r.medianRatio.toFixed(2);
  const met = r.met === null ? '—' : r.met ? 'yes' : '**no**';
  const name = r.note ? `${r.name} (${r.note})` : r.name;
  const n = r.bytenite.length || '—';
  return `| ${name} | ${formatValue(r.medianBytenite, r.unit)} | ${formatValue(r.medianBaseline, r.unit)} | ${ratio} | ${n} | ${r.target || '—'} | ${met} |`;
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',');
  const t0 = Date.now();
  ensureBaseImage(tempDir());
  const results: Result[] = [];
  let failed = false;
  for (const [key, bench] of BENCHMARKS) {
    if (only && !only.includes(key)) continue;
    const b0 = Date.now();
    try {
      results.push(...(await bench()));
    } catch (err) {
      // A wrong answer fails the suite, but the other benchmarks still run and the table says what failed.
      failed = true;
      console.error(err);
      results.push({ ...notMeasured(`${key}: FAILED`, '', ''), met: false, note: `FAILED: ${(err as Error).message.slice(0, 300).replace(/\s+/g, ' ').replace(/\|/g, '/')}` });
    }
    log(`${key}: ${((Date.now() - b0) / 1000).toFixed(0)} s`);
  }
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}; ${PAIRS} counted pairs after a warm-up; ` +
      `whole suite ${((Date.now() - t0) / 60_000).toFixed(1)} min.`, '',
    '| benchmark | ByteNite (median) | baseline (median) | median ratio | pairs | target | met? |',
    '| --- | --- | --- | --- | --- | --- | --- |', ...results.map(row), '',
    'Ratios are ByteNite / baseline, taken pair by pair. Baselines use Debian\'s docker 20.10 CLI; the context benchmarks ' +
      'compare with BuildKit (`DOCKER_BUILDKIT=1 docker build`, the builder the agent drives where the engine has it), ' +
      'with the legacy builder (`DOCKER_BUILDKIT=0`) as rows of their own; warm = `docker run --rm` of the same image. ' +
      'The agent runs as its own process (`bytenite agent --port 0`); its peak memory is the kernel\'s VmHWM. ' +
      'Rows named FLOOR measure the least any client (or the engine itself) can take for the same work, ' +
      'in the same run as the row they judge (alternating with its pairs where it has them) ' +
      'and as a ratio to that row\'s baseline (their notes say what each includes and leaves out): a target below its floor\'s ratio cannot be met by the agent\'s or the client\'s code.',
  ].join('\n');
  const base = only ? 'results.partial' : 'results';
  writeFileSync(path.join(__dirname, `${base}.json`), JSON.stringify({ machine, date: new Date().toISOString(), pairs: PAIRS, results }, null, 2) + '\n');
  writeFileSync(path.join(__dirname, `${base}.md`), md + '\n');
  console.log(md);
  if (failed) throw new Error('a benchmark failed its correctness check: see the table');
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    cleanupAll();
    process.exit(130);
  });
}

main().then(() => cleanupAll(), (err) => {
  console.error(err);
  cleanupAll();
  process.exit(1);
});
