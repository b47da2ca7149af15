/**
 * The agent's pricing table: the project's default list prices (prices.json, bundled) with the owner's
 * override file merged over them, checked against the same schemas the wire protocol uses.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { z } from 'zod';
import { Prices, ReferenceRate } from '../protocol/messages';
import { describeIssues } from '../protocol/parse';
import defaults from './prices.json';

export const PricingTable = z.strictObject({ prices: Prices, reference: z.array(ReferenceRate) });
export type PricingTable = z.infer<typeof PricingTable>;

/**
 * The default table, or the default with `overridePath` deep-merged over it. The override has the same shape
 * and may hold any subset of fields: objects merge key by key (so `gpuSecond: { rtx4090: ... }` adds a type),
 * arrays replace (so `reference: []` drops the comparison). Throws an Error naming the file and the bad field.
 */
export function loadPricing(overridePath?: string): PricingTable {
  const base: unknown = structuredClone(defaults);
  if (overridePath === undefined) return check(base, 'the default pricing table (agent/cost/prices.json)');

  const what = `pricing file ${overridePath}`;
  let text: string;
  try {
    text = readFileSync(overridePath, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what}: ${(err as Error).message}`);
  }
  let override: unknown;
  try {
    override = JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(override)) throw new Error(`${what} must hold a JSON object like { "prices": { ... }, "reference": [ ... ] }`);

  const merged = deepMerge(base, override) as { prices?: Record<string, unknown> };
  // Prices the owner changed are no longer the project's list prices: say where they came from instead,
  // unless the file says so itself.
  const own = override.prices;
  if (isPlainObject(own) && isPlainObject(merged.prices)) {
    if (own.source === undefined) merged.prices.source = `set by the agent's owner in ${basename(overridePath)}, over the ByteNite default list price`;
    if (own.date === undefined) merged.prices.date = statSync(overridePath).mtime.toISOString().slice(0, 10);
  }
  return check(merged, what);
}

function check(table: unknown, what: string): PricingTable {
  const result = PricingTable.safeParse(table);
  if (!result.success) throw new Error(`invalid ${what}: ${describeIssues(result.error)}`);
  return result.data;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    // defineProperty, not assignment: a `__proto__` key from JSON must stay a key (and fail validation).
    const merged = Object.hasOwn(base, key) ? deepMerge(base[key], value) : value;
    Object.defineProperty(out, key, { value: merged, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
