/**
 * What a fan-out run (`spec.parallel` > 1) adds up from its tasks: the run's exit code, its cost, and one
 * outputs archive with a `task-N/` folder per task.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import type { CostBreakdown, TaskResult } from '../protocol';

/** One task's outputs, saved apart until the merge. */
export interface TaskArchive {
  tarPath: string;
  files: number;
  bytes: number;
}

/** The first non-zero task exit code by task index (null when that task never ran), else 0. */
export function fanOutExitCode(tasks: readonly TaskResult[]): number | null {
  const bad = [...tasks].sort((a, b) => a.index - b.index).find((t) => t.exitCode !== 0);
  return bad ? bad.exitCode : 0;
}

/** The sum of the tasks' costs: each task is charged for its own running time. */
export function sumCosts(costs: readonly CostBreakdown[], zero: CostBreakdown): CostBreakdown {
  const total: CostBreakdown = { ...zero, total: 0, vcpu: 0, memory: 0, gpu: 0, billedMs: 0, reference: zero.reference.map((r) => ({ ...r, total: 0 })) };
  for (const c of costs) {
    total.total += c.total;
    total.vcpu += c.vcpu;
    total.memory += c.memory;
    total.gpu += c.gpu;
    total.billedMs += c.billedMs;
    for (const r of c.reference) {
      const t = total.reference.find((x) => x.name === r.name);
      if (t) t.total += r.total;
    }
  }
  return total;
}

/**
 * Merges the tasks' archives (each one's entries start with the output folder's name, as the engine's
 * archive gives them) into `tarPath`, as `outputs/task-N/...`: a client strips the first component as for
 * any run and gets `task-N/` folders. The task archives are removed.
 */
export async function mergeTaskOutputs(byTask: ReadonlyMap<number, TaskArchive>, tarPath: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  if (byTask.size === 0) return { files, bytes };
  const work = `${tarPath}.merge`; // its own: two fan-out runs may merge at the same time
  await rm(work, { recursive: true, force: true });
  try {
    for (const [index, archive] of [...byTask].sort((a, b) => a[0] - b[0])) {
      const dir = path.join(work, 'outputs', `task-${index}`);
      await mkdir(dir, { recursive: true });
      // node-tar refuses absolute paths and `..` on extraction: a task cannot write outside its folder.
      await tar.x({ file: archive.tarPath, cwd: dir, strip: 1 });
      files += archive.files;
      bytes += archive.bytes;
    }
    await tar.c({ cwd: work, file: tarPath, portable: true }, ['outputs']);
  } finally {
    await rm(work, { recursive: true, force: true });
    for (const a of byTask.values()) await rm(a.tarPath, { force: true });
  }
  return { files, bytes };
}
