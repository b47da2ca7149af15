/**
 * A reference platform's rates in one line, as `bytenite hardware` lists them: what it sells per hour, how it
 * bills (increment, minimum, idle tail) and where the figures come from.
 */
import type { ReferenceRate } from '../protocol/messages';
import { formatUsd } from './cost';

export function describeReference(r: ReferenceRate): string {
  const perHour = (perSecond: number) => formatUsd(perSecond * 3600);
  const parts = r.gpuOnly ? ['GPU machines only']
    : r.vcpuSecond === 0 ? [`${perHour(r.gibSecond)}/GiB-h, CPU in proportion`] : [`${perHour(r.vcpuSecond)}/vCPU-h`, `${perHour(r.gibSecond)}/GiB-h`];
  const gpus = Object.entries(r.gpuSecond);
  if (gpus.length) parts.push(gpus.map(([type, s]) => `${type} ${perHour(s)}`).join(', ') + ' per GPU-h');
  const billing = [`per ${r.incrementMs >= 1000 ? `${r.incrementMs / 1000} s` : `${r.incrementMs} ms`}`];
  if (r.minimumMs) billing.push(`${r.minimumMs / 1000} s minimum`);
  if (r.tailMs) billing.push(`+${r.tailMs / 1000} s idle after each run`);
  return `${r.name}: ${parts.join(', ')}; billed ${billing.join(', ')} (${r.date})`;
}
