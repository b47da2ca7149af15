/**
 * The agent's disk, part by part against each budget, as `bytenite hardware`, the sidebar and the start-up
 * log show it. Each part is measured by the component that owns it; this only puts them side by side.
 */
import type { StorageUse } from '../protocol';
import { formatBytes, formatRetention } from '../hardware/sizes';
import type { OutputStore } from './outputStore';
import type { RunJournal } from '../store/runJournal';
import type { BlobStore } from '../store/blobStore';

export interface StorageParts {
  outputs: OutputStore;
  journal: RunJournal;
  blobs?: BlobStore;
  /** Parts measured elsewhere (the engine's images and build cache). */
  more?: () => Promise<StorageUse[]>;
}

export async function storageUse(p: StorageParts): Promise<StorageUse[]> {
  const o = p.outputs.usage();
  const j = p.journal.usage();
  const out: StorageUse[] = [
    {
      name: 'outputs', usedBytes: o.usedBytes, budgetBytes: o.budgetBytes, flag: '--outputs-budget',
      note: `${o.runs} run(s), ${o.unfetched} not fetched yet; kept until fetched, at most ${formatRetention(o.retentionMs)}`,
    },
    { name: 'journal', usedBytes: j.usedBytes, budgetBytes: j.budgetBytes, flag: '', note: 'run records and events; oldest finished runs go first' },
  ];
  if (p.blobs) out.push({ name: 'context-store', usedBytes: p.blobs.bytes, budgetBytes: p.blobs.maxBytes, flag: '--context-store', note: 'build context contents, least recently used go first' });
  if (p.more) out.push(...(await p.more().catch(() => [])));
  return out;
}

/** `outputs 1.20 GiB / 60.0 GiB (--outputs-budget)`, one part a line. */
export function describeStorage(parts: readonly StorageUse[]): string[] {
  return parts.map((s) => `${s.name.padEnd(13)} ${formatBytes(s.usedBytes)} of ${formatBytes(s.budgetBytes)}${s.flag ? ` (${s.flag})` : ''}${s.note ? `: ${s.note}` : ''}`);
}
