/**
 * Which images and which build cache to remove so that what the agent keeps stays within its budgets.
 * Pure: it is given what the engine holds and when each digest was last used, and says what goes.
 *
 * Images are kept by most recent use (a run or a build of their digest), newest first, while their size
 * fits the budget; from the first one that does not fit, every older one goes (least recently used
 * first out). The size of an image is the space it does not share with other images: removing it frees
 * that much, no more. An image a run, a hot container or a waiting run needs is never removed; its size
 * is counted first, so the others fit in what is left.
 */

export interface ImageFacts {
  /** Full image id (sha256:...). */
  id: string;
  /** The tenant-scoped context digest it was built from (label io.bytenite.digest). */
  digest: string;
  /** Bytes only this image holds (Docker's Size - SharedSize): what removing it frees. */
  uniqueBytes: number;
  /** When the engine made it (ms since the epoch): the last use of a digest the agent has no record of. */
  createdMs: number;
  /** Containers of any kind that use it (the engine refuses to remove such an image anyway). */
  containers: number;
}

export interface ImagePlan {
  keep: ImageFacts[];
  remove: ImageFacts[];
  /** Unique bytes of the images kept, needed ones included. */
  keptBytes: number;
}

/**
 * @param lastUsed when each digest was last run or built (ms), if the agent remembers
 * @param needed image ids that waiting, starting or running runs (and hot containers) need
 */
export function planImages(images: readonly ImageFacts[], budgetBytes: number, lastUsed: (digest: string) => number | undefined,
  needed: ReadonlySet<string>): ImagePlan {
  const isNeeded = (i: ImageFacts) => needed.has(i.id) || i.containers > 0;
  const keep = images.filter(isNeeded);
  let keptBytes = keep.reduce((n, i) => n + i.uniqueBytes, 0);
  const when = (i: ImageFacts) => Math.max(lastUsed(i.digest) ?? 0, i.createdMs);
  const rest = images.filter((i) => !isNeeded(i))
    .sort((a, b) => when(b) - when(a) || b.createdMs - a.createdMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const remove: ImageFacts[] = [];
  for (const i of rest) {
    if (remove.length === 0 && keptBytes + i.uniqueBytes <= budgetBytes) {
      keep.push(i);
      keptBytes += i.uniqueBytes;
    } else remove.push(i);
  }
  return { keep, remove, keptBytes };
}

export interface CacheEntry {
  id: string;
  bytes: number;
  createdMs: number;
}

/** Build cache the agent made, kept newest first within its budget; the older rest goes. */
export function planCache<E extends CacheEntry>(entries: readonly E[], budgetBytes: number): { keep: E[]; remove: E[]; keptBytes: number } {
  const sorted = [...entries].sort((a, b) => b.createdMs - a.createdMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const keep: E[] = [];
  const remove: E[] = [];
  let keptBytes = 0;
  for (const e of sorted) {
    if (remove.length === 0 && keptBytes + e.bytes <= budgetBytes) {
      keep.push(e);
      keptBytes += e.bytes;
    } else remove.push(e);
  }
  return { keep, remove, keptBytes };
}
