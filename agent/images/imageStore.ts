/**
 * What the image keeper (imageKeeper.ts) needs from an engine: what it holds, removal, BuildKit's prune,
 * the disk's size, and word of builds and starts. The Docker Engine's side is dockerImages.ts.
 */
import type { CacheEntry, ImageFacts } from './imagePolicy';

export interface ImageSnapshot {
  /** This agent's images, tagged only by it. */
  images: ImageFacts[];
  /** This agent's images left without a tag (a digest built again, by it or another agent): no run can find them. */
  dangling: ImageFacts[];
  /** Untagged, unlabelled images no other image is built on: the legacy builder's leftover steps, anyone's. */
  untagged: CacheEntry[];
  /** Short (12 hex) ids of every image on the engine, intermediate ones included. */
  allIds: ReadonlySet<string>;
  /** BuildKit's build cache, all of it (it is the engine's, not labelled by builder). */
  buildKitBytes: number;
}

/** What the image keeper needs from an engine (agent/images/imageKeeper.ts). */
export interface ImageStore {
  snapshot(agentId: string): Promise<ImageSnapshot>;
  /** True when the image is gone (removed now, or already); false when the engine refuses. */
  remove(id: string): Promise<boolean>;
  /** Prunes BuildKit's cache down to `keepBytes` (POST /build/prune keep-storage, API 1.39+); bytes freed. */
  pruneBuildKit(keepBytes: number): Promise<number>;
  /** The size of the disk that holds the engine's images, when the engine is on this machine. */
  diskBytes(): Promise<{ bytes: number; dir: string } | undefined>;
  /** Images that runs about to start will use (hot containers being made). */
  pending(): ReadonlySet<string>;
  /** Whether a build is in progress: its steps' images must not be removed between two steps. */
  building(): boolean;
  /** What the engine tells the keeper as it builds and starts containers. */
  events?: ImageEvents;
}

export interface ImageEvents {
  /** An image a build made (a step not taken from the cache). */
  made(shortId: string): void;
  /** A build ended; `ok` false when it failed (no run will start from it); `buildKit` when BuildKit built it. */
  buildEnded(ok: boolean, buildKit: boolean): void;
  /** A container's start is over (started or not): the engine is free for a collection. */
  containerStarted(): void;
}
