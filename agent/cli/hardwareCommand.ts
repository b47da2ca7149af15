/** `bytenite hardware`: the catalog an agent offers, with prices. */
import { parseArgs } from 'node:util';
import { formatUsd, hourlyRate } from '../cost/cost';
import { describeReference } from '../cost/referenceText';
import { connect } from './connect';
import { describeStorage } from '../outputs/storageUse';

export async function hardwareCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false }, agent: { type: 'string' }, 'token-file': { type: 'string' }, 'ca-file': { type: 'string' },
      'data-dir': { type: 'string' },
    },
  });
  const conn = await connect(values);
  try {
    const c = await conn.client.hardware();
    if (values.json) {
      process.stdout.write(JSON.stringify(c, null, 2) + '\n');
      return 0;
    }
    const p = c.prices;
    const lines = [
      ...(c.engine ? [`Engine: ${c.engine}`] : []),
      `Host: ${c.host.cpus} vCPUs, ${(c.host.memoryMiB / 1024).toFixed(1)} GiB, ` +
        `${c.host.gpus.length ? c.host.gpus.map((g) => `${g.type} (${g.name}, ${Math.round(g.memoryMiB / 1024)} GiB)`).join(', ') : 'no GPUs'}`,
      `vCPUs:  ${c.cpuOptions.join(', ')}   at ${formatUsd(p.vcpuSecond * 3600)} per vCPU-hour`,
      `Memory: ${c.memoryOptionsMiB.map((m) => (m >= 1024 ? `${m / 1024} GiB` : `${m} MiB`)).join(', ')}   at ${formatUsd(p.gibSecond * 3600)} per GiB-hour`,
      ...c.gpuOptions.map((g) => `GPU ${g.type}: ${g.counts.join(', ')}   at ${formatUsd((p.gpuSecond[g.type] ?? 0) * 3600)} per GPU-hour`),
      `Billed per ${p.incrementMs} ms. Prices: ${p.source} (${p.date}).`,
      ...(p.volume ? [`Volumes: ${formatUsd(p.volume.gibMonth)} per GiB-month of what they hold. ${p.volume.source} (${p.volume.date}).`] : []),
      `Example: 2 vCPU, 4 GiB = ${formatUsd(hourlyRate({ cpus: 2, memoryMiB: 4096 }, p))}/h`,
      ...c.reference.map((r) => `Reference ${describeReference(r)}`),
      ...(c.storage?.length ? ['Disk:', ...describeStorage(c.storage).map((l) => `  ${l}`)] : []),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  } finally {
    await conn.close();
  }
}
