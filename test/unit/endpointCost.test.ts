// What an endpoint has cost: finished instances add up, running ones count so far, "today" restarts at local midnight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CostLedger, Spent, idleWindow, localDay } from '../../agent/endpoints/endpointCost';
import { costOf } from '../../agent/cost/cost';
import { loadPricing } from '../../agent/cost/pricing';

const pricing = loadPricing();
const hw = { cpus: 1, memoryMiB: 2048 };
const minute = (n: number) => costOf(hw, n * 60_000, pricing.prices, pricing.reference);

test('finished instances add up; a running one counts at its cost so far; the reference totals follow', () => {
  const day1 = new Date(2026, 11, 3, 10, 0);
  const ledger = new CostLedger(undefined, day1);
  ledger.add(minute(1), day1);
  ledger.add(minute(2), day1);
  const v = ledger.view([minute(3)], day1);
  const sum = minute(1).total + minute(2).total + minute(3).total;
  assert.ok(Math.abs(v.total - sum) < 1e-12 && Math.abs(v.today - sum) < 1e-12, JSON.stringify(v));
  const modal = (c: { reference: { name: string; total: number }[] }) => c.reference.find((r) => r.name === 'Modal')!.total;
  assert.ok(Math.abs(modal(v) - (modal(minute(1)) + modal(minute(2)) + modal(minute(3)))) < 1e-12);
  // Viewing does not add the running one for good.
  assert.ok(Math.abs(ledger.view([], day1).total - (minute(1).total + minute(2).total)) < 1e-12);
});

test('today starts again on the next local day; the total and its start stay, also through a save and load', () => {
  const day1 = new Date(2026, 11, 3, 23, 59);
  const day2 = new Date(2026, 11, 4, 0, 1);
  const ledger = new CostLedger(undefined, day1);
  ledger.add(minute(5), day1);
  const kept = Spent.parse(JSON.parse(JSON.stringify(ledger.kept())));
  const again = new CostLedger(kept);
  again.add(minute(1), day2);
  const v = again.view([], day2);
  assert.ok(Math.abs(v.today - minute(1).total) < 1e-12);
  assert.ok(Math.abs(v.total - minute(5).total - minute(1).total) < 1e-12);
  assert.equal(v.since, day1.toISOString());
  assert.equal(localDay(day2), '2026-12-04');
});

test('the idle window is the instance held idleMs at the agent\'s prices, said in words', () => {
  const w = idleWindow(hw, 60_000, pricing);
  // 1 vCPU at $0.034/h + 2 GiB at $0.0045/h, for one minute.
  assert.ok(Math.abs(w.usd - (0.034 + 2 * 0.0045) / 60) < 1e-9, String(w.usd));
  assert.equal(w.text, 'each wake keeps 1 vCPU · 2 GiB up 60 s after the last request: $0.000717');
  assert.match(idleWindow({ ...hw, gpu: { type: 'h100', count: 1 } }, 500, pricing).text, /h100 ×1 up 500 ms/);
});
