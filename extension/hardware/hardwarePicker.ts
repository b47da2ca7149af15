/**
 * The hardware picker: one quick pick in steps (vCPUs, memory, GPU, then a summary with the estimate per
 * hour), every item built from the selected agent's live catalog and priced with it. On an agent that
 * offers `fan-out`, a last step picks how many parallel tasks of the image a run starts.
 */
import * as vscode from 'vscode';
import type { Catalog, HardwareRequest } from '../../agent/protocol';
import { formatHardware, formatMemory, formatRate, formatUsd, pricePerHour } from './pricing';

export interface Item<T> extends vscode.QuickPickItem {
  value?: T;
  back?: true;
}

const BACK = Symbol('back');

/** Shows one step; resolves with the picked value, BACK, or undefined when dismissed. */
function step<T>(opts: {
  title: string; stepNo: number; steps: number; placeholder: string; items: Item<T>[]; active?: Item<T>;
}): Promise<T | typeof BACK | undefined> {
  return new Promise((resolve) => {
    const qp = vscode.window.createQuickPick<Item<T>>();
    qp.title = opts.title;
    qp.step = opts.stepNo;
    qp.totalSteps = opts.steps;
    qp.placeholder = opts.placeholder;
    qp.items = opts.items;
    qp.matchOnDescription = true;
    // Steps in a row: a click in the editor between two of them must not throw the earlier choices away.
    qp.ignoreFocusOut = true;
    if (opts.active) qp.activeItems = [opts.active];
    if (opts.stepNo > 1) qp.buttons = [vscode.QuickInputButtons.Back];
    let done = false;
    const finish = (v: T | typeof BACK | undefined) => {
      if (done) return;
      done = true;
      resolve(v);
      qp.dispose();
    };
    qp.onDidTriggerButton((b) => b === vscode.QuickInputButtons.Back && finish(BACK));
    qp.onDidAccept(() => {
      const sel = qp.selectedItems[0] ?? qp.activeItems[0];
      if (!sel) return;
      finish(sel.back ? BACK : sel.value);
    });
    qp.onDidHide(() => finish(undefined));
    qp.show();
  });
}

type GpuValue = { type: string; count: number } | null;
const perHour = (perSecond: number) => formatUsd(perSecond * 3600) + '/h';

/** Step 1 items: the catalog's vCPU options, each with its price per hour. */
export function cpuItems(catalog: Catalog): Item<number>[] {
  return catalog.cpuOptions.map((c) => ({ label: `${c} vCPU`, description: perHour(c * catalog.prices.vcpuSecond), value: c }));
}

/** Step 2 items: the catalog's memory options. */
export function memoryItems(catalog: Catalog): Item<number>[] {
  return catalog.memoryOptionsMiB.map((m) => ({
    label: formatMemory(m), description: perHour((m / 1024) * catalog.prices.gibSecond), value: m,
  }));
}

/** Step 3 items: no GPU, then each GPU type and count the agent can serve. */
export function gpuItems(catalog: Catalog): Item<GpuValue>[] {
  const items: Item<GpuValue>[] = [{ label: 'No GPU', description: '$0.00/h', value: null }];
  for (const g of catalog.gpuOptions) {
    const price = catalog.prices.gpuSecond[g.type];
    for (const count of g.counts) {
      items.push({
        label: `${count}× ${g.type.toUpperCase()}`, detail: g.name,
        description: price === undefined ? 'price unknown' : perHour(price * count), value: { type: g.type, count },
      });
    }
  }
  return items;
}

/** The fan-out step's items: how many tasks of the image a run starts. */
export const PARALLEL_OPTIONS: readonly number[] = [1, 2, 4, 8];
export function parallelItems(): Item<number>[] {
  return PARALLEL_OPTIONS.map((n) => ({
    label: n === 1 ? '1 task' : `${n} parallel tasks`, description: n === 1 ? 'no fan-out' : `each task billed for its own run time`, value: n,
  }));
}

/** What the picker resolves with: the hardware, and the number of parallel tasks (1 without fan-out). */
export interface HardwarePick {
  hardware: HardwareRequest;
  parallel: number;
}

/**
 * Runs the picker; resolves with the choice, or undefined when the user dismissed it. `parallel` is the
 * current fan-out choice, or undefined when the agent does not offer fan-out (then there is no such step).
 */
export async function pickHardware(
  catalog: Catalog, current: HardwareRequest, title: string, parallel?: number,
): Promise<HardwarePick | undefined> {
  const p = catalog.prices;
  const hasGpu = catalog.gpuOptions.some((g) => g.counts.length > 0);
  const fanOut = parallel !== undefined;
  const steps = (hasGpu ? 4 : 3) + (fanOut ? 1 : 0);
  const summaryStep = hasGpu ? 4 : 3;
  let hw: HardwareRequest = { ...current };
  let tasks = parallel ?? 1;
  let at = 1;
  for (;;) {
    if (at === 1) {
      const items = cpuItems(catalog);
      const r = await step({ title, stepNo: 1, steps, placeholder: 'vCPUs', items, active: items.find((i) => i.value === hw.cpus) });
      if (r === undefined) return undefined;
      if (r === BACK) continue;
      hw = { ...hw, cpus: r };
      at = 2;
    } else if (at === 2) {
      const items = memoryItems(catalog);
      const r = await step({ title, stepNo: 2, steps, placeholder: 'Memory', items, active: items.find((i) => i.value === hw.memoryMiB) });
      if (r === undefined) return undefined;
      if (r === BACK) { at = 1; continue; }
      hw = { ...hw, memoryMiB: r };
      at = hasGpu ? 3 : 4;
    } else if (at === 3) {
      const items = gpuItems(catalog);
      const active = items.find((i) => (i.value === null ? !hw.gpu : i.value?.type === hw.gpu?.type && i.value?.count === hw.gpu?.count));
      const r = await step({ title, stepNo: 3, steps, placeholder: 'GPU', items, active });
      if (r === undefined) return undefined;
      if (r === BACK) { at = 2; continue; }
      hw = r ? { ...hw, gpu: r } : { cpus: hw.cpus, memoryMiB: hw.memoryMiB };
      at = 4;
    } else if (at === 4) {
      const rate = pricePerHour(p, hw);
      const items: Item<'ok'>[] = [
        { label: `$(check) Use ${formatHardware(hw)}`, description: `estimate ${formatRate(rate)}`, value: 'ok' },
      ];
      const r = await step({ title, stepNo: summaryStep, steps, placeholder: `Estimate: ${formatRate(rate)} while running`, items });
      if (r === undefined) return undefined;
      if (r === BACK) { at = hasGpu ? 3 : 2; continue; }
      if (!fanOut) return { hardware: hw, parallel: 1 };
      at = 5;
    } else {
      const items = parallelItems();
      const r = await step({
        title, stepNo: steps, steps, placeholder: `Parallel tasks (each at ${formatRate(pricePerHour(p, hw))} while it runs)`,
        items, active: items.find((i) => i.value === tasks),
      });
      if (r === undefined) return undefined;
      if (r === BACK) { at = 4; continue; }
      tasks = r;
      return { hardware: hw, parallel: tasks };
    }
  }
}
