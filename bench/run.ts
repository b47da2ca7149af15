/**
 * `npm run bench`: every benchmark, ByteNite and its baseline alternating run by run, medians and the
 * median of the pair-by-pair ratios. Writes bench/results.json and bench/results.md.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchFirstLine, PairResult } from './firstLine';

async function main(): Promise<void> {
  const results: PairResult[] = [...(await benchFirstLine())];
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
  const rows = results.map((r) =>
    `| ${r.name} | ${r.medianBytenite.toFixed(0)} ms | ${r.medianBaseline.toFixed(0)} ms | ${r.medianRatio.toFixed(2)} | ${r.bytenite.length} |`);
  const md = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}.`, '',
    '| benchmark | ByteNite (median) | baseline (median) | median ratio | pairs |', '| --- | --- | --- | --- | --- |', ...rows, '',
    'Baselines: warm = `docker run --rm` of the same image; cold = `docker build` + `docker run --rm`.',
  ].join('\n');
  writeFileSync(path.join(__dirname, 'results.json'), JSON.stringify({ machine, date: new Date().toISOString(), results }, null, 2) + '\n');
  writeFileSync(path.join(__dirname, 'results.md'), md + '\n');
  console.log(md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
