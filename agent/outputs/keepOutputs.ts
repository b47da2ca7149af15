/**
 * From a stopped container to the output store, and what the run's final event says about it: how many
 * files were kept and until when, or why they could not be kept. Nothing here deletes silently: a refusal
 * is the run's to report.
 */
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { FinalEvent } from '../protocol';
import type { RunningContainer } from '../engine/engine';
import { mergeTaskOutputs, TaskArchive } from '../runs/fanOut';
import { OutputsNotKept, OutputStore } from './outputStore';

export type OutputsField = FinalEvent['outputs'];

const NONE: OutputsField = { files: 0, bytes: 0 };

function notKept(err: unknown): string {
  return err instanceof OutputsNotKept ? err.message : `outputs not kept: copying them out of the container failed: ${(err as Error).message}`;
}

/** Copies a run's output folder into the store; the final event's `outputs`. */
export async function keepOutputs(store: OutputStore, runId: string, tenant: string, running: RunningContainer, log: Logger): Promise<OutputsField> {
  try {
    const archive = await running.openOutputs();
    if (!archive) return NONE;
    const r = await store.save(runId, tenant, archive);
    return r ? { files: r.files, bytes: r.bytes, expiresAt: store.expiresAt(r).toISOString() } : NONE;
  } catch (err) {
    const message = notKept(err);
    log.warn({ runId, err: message }, 'outputs not kept');
    return { ...NONE, notKept: message };
  }
}

/** One task's outputs of a fan-out run, kept apart (within the store's budget) until the merge. */
export type TaskOutputs = TaskArchive | { notKept: string } | undefined;

export async function keepTaskOutputs(store: OutputStore, runId: string, task: number, running: RunningContainer, log: Logger): Promise<TaskOutputs> {
  try {
    const archive = await running.openOutputs();
    if (!archive) return undefined;
    const tarPath = store.workPath(`${runId}.task-${task}.tar`);
    const counted = await store.saveWork(archive, tarPath);
    return counted.files > 0 ? { tarPath, ...counted } : undefined;
  } catch (err) {
    const message = notKept(err);
    log.warn({ runId, task, err: message }, 'a task\'s outputs not kept');
    return { notKept: message };
  }
}

/** Merges the tasks' archives into one `task-N/` archive and keeps it; a task whose outputs were refused refuses the whole. */
export async function keepMergedOutputs(store: OutputStore, runId: string, tenant: string, byTask: ReadonlyMap<number, TaskOutputs>, log: Logger): Promise<OutputsField> {
  const archives = new Map<number, TaskArchive>();
  const refused: string[] = [];
  for (const [i, o] of byTask) {
    if (!o) continue;
    if ('notKept' in o) refused.push(`task ${i}: ${o.notKept}`);
    else archives.set(i, o);
  }
  const work = store.workPath(`${runId}.merged.tar`);
  try {
    if (refused.length > 0) throw new OutputsNotKept(refused.join('; '));
    const merged = await mergeTaskOutputs(archives, work);
    if (merged.files === 0) return NONE;
    const r = await store.adopt(runId, tenant, work, merged.files, merged.bytes);
    return { files: r.files, bytes: r.bytes, expiresAt: store.expiresAt(r).toISOString() };
  } catch (err) {
    const message = notKept(err);
    log.warn({ runId, err: message }, 'outputs not kept');
    return { ...NONE, notKept: message };
  } finally {
    for (const a of archives.values()) await rm(a.tarPath, { force: true });
    await rm(work, { force: true });
  }
}
