/**
 * Cost arithmetic: a run pays for what it was allocated (not what it used) for its billed duration, the
 * container's run time rounded up to the billing increment. Pure functions, no Node imports, so any
 * bundle can show the same figures the agent bills.
 */
import type { CostBreakdown, HardwareRequest, Prices, ReferenceRate } from '../protocol/messages';

/** `durationMs` rounded up to a whole number of `incrementMs`; 0 (or less) bills nothing. */
export function billedMs(durationMs: number, incrementMs: number): number {
  if (!(incrementMs > 0)) throw new RangeError(`billing increment must be positive, got ${incrementMs}`);
  if (!(durationMs > 0)) return 0;
  return Math.ceil(durationMs / incrementMs) * incrementMs;
}

type Rates = Pick<Prices, 'vcpuSecond' | 'gibSecond' | 'gpuSecond'>;

// A GPU type the table does not price contributes nothing: a reference provider without that GPU, or an
// owner who has not priced a card, is not a reason to fail a run.
function perSecond(hw: HardwareRequest, rates: Rates) {
  return {
    vcpu: hw.cpus * rates.vcpuSecond,
    memory: (hw.memoryMiB / 1024) * rates.gibSecond,
    gpu: hw.gpu && Object.hasOwn(rates.gpuSecond, hw.gpu.type) ? hw.gpu.count * rates.gpuSecond[hw.gpu.type] : 0,
  };
}

/** What `hw` costs per hour at `prices`. */
export function hourlyRate(hw: HardwareRequest, prices: Rates): number {
  const s = perSecond(hw, prices);
  return (s.vcpu + s.memory + s.gpu) * 3600;
}

/** The cost of holding `hw` for `durationMs`, at `prices` and at each reference's rates and increment. */
export function costOf(hw: HardwareRequest, durationMs: number, prices: Prices, reference: ReferenceRate[]): CostBreakdown {
  const billed = billedMs(durationMs, prices.incrementMs);
  const seconds = billed / 1000;
  const s = perSecond(hw, prices);
  const vcpu = s.vcpu * seconds;
  const memory = s.memory * seconds;
  const gpu = s.gpu * seconds;
  return {
    currency: 'USD', total: vcpu + memory + gpu, vcpu, memory, gpu, billedMs: billed,
    reference: reference.map((r) => referenceCost(hw, durationMs, r)),
  };
}

/**
 * `hw` held for `durationMs` at one reference's rates, with its increment, minimum and tail. What the
 * reference does not sell (a GPU type it has no price for, or CPU machines from a GPU-only platform) is
 * named in `unpriced` rather than silently counted as free.
 */
export function referenceCost(hw: HardwareRequest, durationMs: number, r: ReferenceRate): CostBreakdown['reference'][number] {
  const unpriced = !hw.gpu && r.gpuOnly ? 'GPU machines only'
    : hw.gpu && !Object.hasOwn(r.gpuSecond, hw.gpu.type) ? `no ${hw.gpu.type}` : undefined;
  const rs = perSecond(hw, r);
  const held = durationMs > 0 ? Math.max(durationMs, r.minimumMs ?? 0) + (r.tailMs ?? 0) : 0;
  const total = unpriced === 'GPU machines only' ? 0 : (rs.vcpu + rs.memory + rs.gpu) * (billedMs(held, r.incrementMs) / 1000);
  return unpriced ? { name: r.name, total, unpriced } : { name: r.name, total };
}

/**
 * A formatter made at its first use: the first Intl object of a process loads ICU's data (12 ms of a CLI
 * start here), and a run prints its first cost only at its end, after its first line.
 */
function numberFormat(options: Intl.NumberFormatOptions): () => Intl.NumberFormat {
  let made: Intl.NumberFormat | undefined;
  return () => (made ??= new Intl.NumberFormat('en-US', options));
}

const cents = numberFormat({ minimumFractionDigits: 2, maximumFractionDigits: 2 });
const smallAmount = numberFormat({ maximumSignificantDigits: 3 });

/** `$12.34`, `$0.09`; under a cent, three significant digits (`$0.000123`) so a short run does not read as free. */
export function formatUsd(n: number): string {
  const sign = n < 0 ? '-' : '';
  const a = Math.abs(n);
  if (a === 0) return '$0.00';
  return `${sign}$${a < 0.01 ? smallAmount().format(a) : cents().format(a)}`;
}

const upTo2 = numberFormat({ maximumFractionDigits: 2, useGrouping: false });

/** `512 MiB`, `4 GiB`, `1.5 GiB`. */
export function formatMiB(mib: number): string {
  return mib < 1024 ? `${upTo2().format(mib)} MiB` : `${upTo2().format(mib / 1024)} GiB`;
}

/** `2 vCPU · 4 GiB · $0.09/h`, or `2 vCPU · 4 GiB · h100 ×1 · $2.89/h` with a GPU: what a hardware choice is and costs. */
export function formatHardware(hw: HardwareRequest, prices: Rates): string {
  const parts = [`${upTo2().format(hw.cpus)} vCPU`, formatMiB(hw.memoryMiB)];
  if (hw.gpu) parts.push(`${hw.gpu.type} ×${hw.gpu.count}`);
  parts.push(`${formatUsd(hourlyRate(hw, prices))}/h`);
  return parts.join(' · ');
}
