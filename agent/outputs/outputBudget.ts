/** The defaults of the output store's limits, and how the agent states them at start. */
import { statfsSync } from 'node:fs';

export const DEFAULT_OUTPUTS_RETENTION_MS = 7 * 86_400_000;

/** Share of the data folder's disk that outputs may take unless told otherwise. */
const DISK_SHARE = 0.25;
const FLOOR = 1024 ** 3;

/** A quarter of the disk the data folder is on (at least 1 GiB): big results fit without filling the disk. */
export function defaultOutputsBudget(dataDir: string): number {
  try {
    const s = statfsSync(dataDir);
    return Math.max(FLOOR, Math.floor(s.blocks * s.bsize * DISK_SHARE));
  } catch {
    return 16 * FLOOR;
  }
}
