/**
 * What an endpoint has cost: its instances are runs, billed as runs are, so an instance's final cost is added
 * here when it ends (on the agent's local day it ended) and a running one's cost so far is added when asked.
 * Kept with the definition, so the totals survive a restart. Also what one wake's idle window costs, since
 * that is the price of scaling to zero with a delay.
 */
import { z } from 'zod';
import { costOf, formatMiB, formatUsd } from '../cost/cost';
import type { PricingTable } from '../cost/pricing';
import type { CostBreakdown, EndpointCost, HardwareRequest } from '../protocol';

const ReferenceTotal = z.strictObject({ name: z.string(), total: z.number().nonnegative(), unpriced: z.string().optional() });

/** The totals as kept on disk. */
export const Spent = z.strictObject({
  total: z.number().nonnegative(), since: z.string(),
  day: z.string().describe('The local day `today` counts (YYYY-MM-DD).'), today: z.number().nonnegative(),
  reference: z.array(ReferenceTotal).default([]),
});
export type Spent = z.infer<typeof Spent>;

/** `2026-12-03`, on the agent's clock and time zone: "today" is the owner's day. */
export function localDay(at: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

export class CostLedger {
  private spent: Spent;

  constructor(kept: Spent | undefined, now = new Date()) {
    this.spent = kept ?? { total: 0, since: now.toISOString(), day: localDay(now), today: 0, reference: [] };
  }

  /** An instance ended, with this cost. */
  add(cost: CostBreakdown, at = new Date()): void {
    this.rollOver(at);
    this.spent.total += cost.total;
    this.spent.today += cost.total;
    this.spent.reference = addReference(this.spent.reference, cost.reference);
  }

  /** The totals, with the instances still running added at their cost so far. */
  view(running: readonly CostBreakdown[], now = new Date()): Pick<EndpointCost, 'today' | 'total' | 'since' | 'reference'> {
    this.rollOver(now);
    const live = running.reduce((n, c) => n + c.total, 0);
    return {
      today: this.spent.today + live, total: this.spent.total + live, since: this.spent.since,
      reference: running.reduce((acc, c) => addReference(acc, c.reference), this.spent.reference),
    };
  }

  kept(): Spent {
    return this.spent;
  }

  private rollOver(at: Date): void {
    const day = localDay(at);
    if (day !== this.spent.day) this.spent = { ...this.spent, day, today: 0 };
  }
}

function addReference(into: Spent['reference'], more: CostBreakdown['reference']): Spent['reference'] {
  const out = into.map((r) => ({ ...r }));
  for (const r of more) {
    const t = out.find((x) => x.name === r.name);
    if (t) t.total += r.total;
    else out.push({ ...r });
  }
  return out;
}

/** One wake's idle window: what the instance costs while it waits `idleMs` after its last request. */
export function idleWindow(hw: HardwareRequest, idleMs: number, pricing: PricingTable): EndpointCost['idle'] {
  const usd = costOf(hw, idleMs, pricing.prices, []).total;
  const what = [`${hw.cpus} vCPU`, formatMiB(hw.memoryMiB), ...(hw.gpu ? [`${hw.gpu.type} ×${hw.gpu.count}`] : [])].join(' · ');
  const seconds = idleMs / 1000;
  return { usd, ms: idleMs, text: `each wake keeps ${what} up ${seconds < 1 ? `${idleMs} ms` : `${+seconds.toFixed(1)} s`} after the last request: ${formatUsd(usd)}` };
}
