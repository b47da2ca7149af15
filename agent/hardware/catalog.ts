/**
 * The hardware catalog: what this agent's host has, the choices it offers a run, and the check that a
 * run's request fits before anything is built.
 */
import os from 'node:os';
import type { Catalog, HardwareRequest, Prices, ReferenceRate } from '../protocol/messages';
import { formatMiB } from '../cost/cost';
import { detectGpus } from './nvidiaSmi';

export type HostInfo = Catalog['host'];

/** This machine's vCPUs, memory and GPUs. */
export async function readHost(): Promise<HostInfo> {
  // os.cpus() is empty on some platforms and sandboxes; availableParallelism() is never below 1.
  const cpus = os.cpus().length || os.availableParallelism();
  return { cpus, memoryMiB: Math.floor(os.totalmem() / (1024 * 1024)), gpus: await detectGpus() };
}

/** Memory kept back for the OS, the engine and the agent: 10% of the host, at most 1 GiB. */
export const reservedMiB = (hostMiB: number) => Math.min(hostMiB * 0.1, 1024);

/** 0.5, 1, 2, 4... up to the host's count, and the count itself when it is not a power of two (e.g. 12). */
export function cpuOptions(hostCpus: number): number[] {
  const options: number[] = [];
  for (let c = 0.5; c <= hostCpus; c *= 2) options.push(c);
  if (options[options.length - 1] !== hostCpus) options.push(hostCpus);
  return options;
}

/** 256 MiB, 512 MiB, 1 GiB... up to what the host can give after its reserve, and that amount itself. */
export function memoryOptionsMiB(hostMiB: number): number[] {
  const usable = hostMiB - reservedMiB(hostMiB);
  const options: number[] = [];
  for (let m = 256; m <= usable; m *= 2) options.push(m);
  // The top choice is rounded down to 256 MiB so it reads as a round size (e.g. 124.5 GiB, not 127,507 MiB).
  const top = Math.floor(usable / 256) * 256 || Math.floor(usable);
  if (top > 0 && options[options.length - 1] !== top) options.push(top);
  return options;
}

/** The catalog a client picks from: host facts, the offered choices and the prices they are billed at. */
export function buildCatalog(host: HostInfo, prices: Prices, reference: ReferenceRate[]): Catalog {
  const byType = new Map<string, { names: string[]; count: number }>();
  for (const gpu of [...host.gpus].sort((a, b) => a.index - b.index)) {
    const group = byType.get(gpu.type) ?? { names: [], count: 0 };
    if (!group.names.includes(gpu.name)) group.names.push(gpu.name);
    group.count++;
    byType.set(gpu.type, group);
  }
  return {
    host,
    cpuOptions: cpuOptions(host.cpus),
    memoryOptionsMiB: memoryOptionsMiB(host.memoryMiB),
    gpuOptions: [...byType].map(([type, g]) => ({
      type, name: g.names.join(' / '), counts: Array.from({ length: g.count }, (_, i) => i + 1),
    })),
    prices,
    reference,
  };
}

/**
 * undefined when `req` fits this agent; otherwise what was asked and what is available, e.g.
 * `asked for 64 vCPUs; this agent offers 0.5, 1, 2 vCPUs`. Any vCPU count and memory size up to the largest
 * option fits, not only the listed ones.
 */
export function checkHardware(catalog: Catalog, req: HardwareRequest): string | undefined {
  const problems: string[] = [];

  const maxCpus = Math.max(0, ...catalog.cpuOptions);
  if (!(req.cpus > 0 && req.cpus <= maxCpus)) {
    problems.push(`asked for ${req.cpus} ${req.cpus === 1 ? 'vCPU' : 'vCPUs'}; this agent offers ${catalog.cpuOptions.join(', ')} vCPUs`);
  }

  const maxMiB = Math.max(0, ...catalog.memoryOptionsMiB);
  if (!(req.memoryMiB > 0 && req.memoryMiB <= maxMiB)) {
    problems.push(`asked for ${formatMiB(req.memoryMiB)} of memory; this agent offers ${catalog.memoryOptionsMiB.map(formatMiB).join(', ')}`);
  }

  if (req.gpu) {
    const option = catalog.gpuOptions.find((g) => g.type === req.gpu!.type);
    if (!option || !option.counts.includes(req.gpu.count)) {
      const have = catalog.gpuOptions.map((g) => `${g.type} x${Math.max(...g.counts)}`).join(', ');
      problems.push(`asked for gpu ${req.gpu.type}:${req.gpu.count}; this agent has ${have || 'no GPUs'}`);
    }
  }

  return problems.length ? problems.join('; ') : undefined;
}
