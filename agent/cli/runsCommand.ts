/** `bytenite runs`: the runs an agent knows (from its journal, so past ones too), newest first. */
import { parseArgs } from 'node:util';
import { formatUsd } from '../cost/cost';
import { connect } from './connect';
import { formatMs } from './runReporter';

export async function runsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false }, agent: { type: 'string' }, 'token-file': { type: 'string' },
      'ca-file': { type: 'string' }, 'data-dir': { type: 'string' },
    },
  });
  const conn = await connect(values);
  try {
    const runs = await conn.client.list();
    if (values.json) {
      for (const r of runs) process.stdout.write(JSON.stringify(r) + '\n');
      return 0;
    }
    if (!runs.length) {
      process.stderr.write('no runs on this agent yet\n');
      return 0;
    }
    for (const r of runs) {
      const f = r.final && (r.final.kind === 'exited' || r.final.kind === 'failed' || r.final.kind === 'cancelled') ? r.final : undefined;
      const outcome = f ? `${r.state}${f.exitCode !== null ? ` ${f.exitCode}` : ''}${f.oomKilled ? ' (OOM)' : ''}` : r.state;
      const detail = f ? `${f.start} · ${formatMs(f.durationMs)} · ${formatUsd(f.cost.total)}` : '';
      process.stdout.write(`${r.runId}  ${r.createdAt}  ${outcome.padEnd(12)} ${detail.padEnd(32)} ${r.name ?? ''}\n`);
    }
    return 0;
  } finally {
    await conn.close();
  }
}
