/** Prices a hardware request with an agent's catalog, and formats hardware and money for people. */
import type { Catalog, HardwareRequest, Prices } from '../../agent/protocol';

/** Dollars per hour for `hw` at `prices`; undefined when the GPU type has no price. */
export function pricePerHour(prices: Prices, hw: HardwareRequest): number | undefined {
  let perSecond = hw.cpus * prices.vcpuSecond + (hw.memoryMiB / 1024) * prices.gibSecond;
  if (hw.gpu) {
    const gpu = prices.gpuSecond[hw.gpu.type];
    if (gpu === undefined) return undefined;
    perSecond += gpu * hw.gpu.count;
  }
  return perSecond * 3600;
}

export function formatMemory(mib: number): string {
  if (mib >= 1024 && mib % 1024 === 0) return `${mib / 1024} GiB`;
  if (mib >= 1024) return `${(mib / 1024).toFixed(1)} GiB`;
  return `${mib} MiB`;
}

/** `2 vCPU · 4 GiB` or `8 vCPU · 64 GiB · 1× H100`. */
export function formatHardware(hw: HardwareRequest): string {
  const parts = [`${hw.cpus} vCPU`, formatMemory(hw.memoryMiB)];
  if (hw.gpu) parts.push(`${hw.gpu.count}× ${hw.gpu.type.toUpperCase()}`);
  return parts.join(' · ');
}

/** Money with enough digits to see a small run move: $0.09, $0.0012. */
export function formatUsd(amount: number): string {
  if (amount === 0) return '$0.00';
  if (amount >= 0.1) return `$${amount.toFixed(2)}`;
  if (amount >= 0.001) return `$${amount.toFixed(4)}`;
  return `$${amount.toPrecision(2)}`;
}

export const formatRate = (perHour: number | undefined) => (perHour === undefined ? 'price unknown' : `${formatUsd(perHour)}/h`);

/** Closest request the catalog can serve: vCPUs and memory clipped to what it offers, an unknown GPU dropped. */
export function fitToCatalog(catalog: Catalog, hw: HardwareRequest): HardwareRequest {
  const cpus = nearest(catalog.cpuOptions, hw.cpus) ?? hw.cpus;
  const maxMem = Math.max(0, ...catalog.memoryOptionsMiB);
  const memoryMiB = maxMem > 0 ? Math.min(hw.memoryMiB, maxMem) : hw.memoryMiB;
  const out: HardwareRequest = { cpus, memoryMiB };
  if (hw.gpu) {
    const opt = catalog.gpuOptions.find((g) => g.type === hw.gpu!.type);
    if (opt && opt.counts.length) out.gpu = { type: opt.type, count: nearest(opt.counts, hw.gpu.count) ?? opt.counts[0] };
  }
  return out;
}

/** The largest option not above `want`, else the smallest option. */
function nearest(options: number[], want: number): number | undefined {
  if (!options.length) return undefined;
  const sorted = [...options].sort((a, b) => a - b);
  let pick = sorted[0];
  for (const o of sorted) if (o <= want) pick = o;
  return pick;
}

/** Used before any label or choice: the example size. */
export const DEFAULT_HARDWARE: HardwareRequest = { cpus: 2, memoryMiB: 4096 };
