/**
 * Where volumes live: Docker named volumes (driver `local`) on the agent's engine, labelled with the agent and
 * the tenant so they can be found again after a restart. Engine volumes rather than folders in the agent's
 * data dir: the engine may be on another machine (--engine-host, ssh), and a bind mount of the agent's
 * folders is exactly what runs must never get.
 */
import type Docker from 'dockerode';
import type { RunEvent } from '../protocol';
import { diskUsage } from '../images/dockerImages';

export interface EngineVolume {
  /** The engine's name for it. */
  engineName: string;
  labels: Record<string, string>;
  createdAt: string;
}

export interface VolumeBackend {
  /** Makes the volume unless it is there (the engine's create is idempotent for a name). */
  create(engineName: string, labels: Record<string, string>): Promise<void>;
  /** The volumes that carry all these labels. */
  list(labels: Record<string, string>): Promise<EngineVolume[]>;
  /**
   * What each volume holds, in bytes, by engine name: the engine's own measure (`GET /system/df`, which walks
   * each local volume's folder: the sum of its files' sizes).
   */
  sizes(): Promise<Map<string, number>>;
  /** Removes it; rejects with `inUse` set when the engine says a container still uses it. */
  remove(engineName: string): Promise<void>;
  /**
   * On a cluster, where a volume lives on one node: why these volumes cannot be mounted now (their node is
   * down or drained), or undefined. Asked when a run is created, before it waits or builds.
   */
  refuse?(volumes: Array<{ engineName: string; name: string }>): Promise<string | undefined>;
  /** On a cluster: tells `onPlaced` where each start of this run was placed for its volumes; returns the unsubscribe. */
  follow?(runId: string, onPlaced: (e: PlacedEvent) => void): () => void;
}

export type PlacedEvent = Extract<RunEvent, { kind: 'placed' }>;

export class VolumeInUseError extends Error {}

export class DockerVolumes implements VolumeBackend {
  constructor(private readonly docker: Docker) {}

  async create(engineName: string, labels: Record<string, string>): Promise<void> {
    await this.docker.createVolume({ Name: engineName, Driver: 'local', Labels: labels });
  }

  async list(labels: Record<string, string>): Promise<EngineVolume[]> {
    const r: Docker.VolumeInspectInfo[] = (await this.docker.listVolumes({ filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } })).Volumes ?? [];
    return r.map((v) => ({
      engineName: v.Name, labels: v.Labels ?? {},
      createdAt: (v as { CreatedAt?: string }).CreatedAt ?? new Date(0).toISOString(),
    }));
  }

  async sizes(): Promise<Map<string, number>> {
    // `type=volume` (API 1.42+) spares the engine measuring images and containers; older ones ignore it.
    // Through the image budget's df queue: an engine refuses a second df while one runs ("already running").
    const df = await diskUsage(() => new Promise<{ Volumes?: Array<{ Name: string; UsageData?: { Size: number } | null }> | null }>((resolve, reject) => {
      this.docker.modem.dial({ path: '/system/df?type=volume', method: 'GET', statusCodes: { 200: true, 500: 'server error' } },
        (err, data) => (err ? reject(err) : resolve(data as never)));
    }));
    return new Map((df.Volumes ?? []).map((v) => [v.Name, Math.max(0, v.UsageData?.Size ?? 0)]));
  }

  async remove(engineName: string): Promise<void> {
    try {
      await this.docker.getVolume(engineName).remove();
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) return;
      if (status === 409) throw new VolumeInUseError((err as { json?: { message?: string } }).json?.message ?? (err as Error).message);
      throw err;
    }
  }
}
