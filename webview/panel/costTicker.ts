/**
 * The cost shown while a run goes: the last cost event, moved forward at the run's rate between events so
 * it ticks smoothly, never more than one event interval ahead, and never going backwards on screen.
 */
import type { RunModel } from './runModel';

/** The agent sends cost at least once a second; extrapolating further would only be a guess. */
export const MAX_AHEAD_MS = 1000;

/** Cost to show at `now`; undefined before the first cost event. `hourlyUsd` is the hardware's price. */
export function tickerCost(m: RunModel, now: number, hourlyUsd?: number): number | undefined {
  if (m.final) return m.final.cost.total;
  const c = m.cost;
  if (!c) return undefined;
  if (m.state !== 'running') return c.total;
  const rate = hourlyUsd !== undefined && hourlyUsd > 0 ? hourlyUsd / 3_600_000 : c.ratePerMs ?? 0;
  return c.total + rate * Math.min(MAX_AHEAD_MS, Math.max(0, now - c.at));
}

/** Keeps the shown value monotonic while running; the final cost replaces it whatever it is. */
export class TickerDisplay {
  private shown = -1;

  next(value: number | undefined, final: boolean): number | undefined {
    if (value === undefined) return undefined;
    this.shown = final ? value : Math.max(this.shown, value);
    return this.shown;
  }
}
