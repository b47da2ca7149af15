/** `bytenite volumes [--json]` and `bytenite volume rm NAME`: the named volumes of the token's tenant on an agent. */
import { parseArgs } from 'node:util';
import { formatBytes } from '../hardware/sizes';
import { formatUsd } from '../cost/cost';
import { connect } from './connect';
import { UsageError } from './runCommand';

const CONNECT_OPTIONS = { agent: { type: 'string' }, 'token-file': { type: 'string' }, 'ca-file': { type: 'string' }, 'data-dir': { type: 'string' } } as const;

export const VOLUME_HELP = `Usage:
  bytenite volumes [--json] [--agent URL --token-file FILE]   this tenant's named volumes: size, last used, runs using them, cost
  bytenite volume rm NAME [--agent URL --token-file FILE]     remove a volume and its data (refused while a run uses it)
`;

export async function volumesCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...CONNECT_OPTIONS, json: { type: 'boolean', default: false } } });
  const conn = await connect(values);
  try {
    const r = await conn.client.volumes();
    if (values.json) {
      for (const v of r.volumes) process.stdout.write(JSON.stringify(v) + '\n');
      return 0;
    }
    if (!r.volumes.length) process.stderr.write('no volumes on this agent yet (bytenite run -v NAME:/path makes one)\n');
    for (const v of r.volumes) {
      const users = v.inUse.length ? `in use by ${v.inUse.map((u) => `${u.runId}${u.readOnly ? ' (ro)' : ''}`).join(', ')}` : 'not in use';
      process.stdout.write(`${v.name.padEnd(24)} ${formatBytes(v.sizeBytes).padStart(10)}  ${`${formatUsd(v.monthlyCost)}/month`.padEnd(16)} ` +
        `last used ${v.lastUsedAt ?? 'never'}  ${users}\n`);
    }
    process.stderr.write(`${formatBytes(r.usedBytes)} of a ${formatBytes(r.quotaBytes)} quota; storage at $${r.price.gibMonth} per GiB-month (${r.price.source})\n`);
    return 0;
  } finally {
    await conn.close();
  }
}

export async function volumeCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'rm' && sub !== 'remove') throw new UsageError('bytenite volume rm NAME');
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { ...CONNECT_OPTIONS } });
  if (positionals.length !== 1) throw new UsageError('bytenite volume rm NAME: one volume name');
  const conn = await connect(values);
  try {
    await conn.client.removeVolume(positionals[0]);
    process.stderr.write(`bytenite: volume ${positionals[0]} removed\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`bytenite: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await conn.close();
  }
}
