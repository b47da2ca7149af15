/**
 * The engine side of the image budget, for a Docker Engine: measures this agent's images and build cache
 * (Docker's /system/df: Size and SharedSize per image), removes an image (never forced: the engine
 * refuses one a container uses, one with child images, one tagged by someone else), prunes BuildKit's
 * cache to a size, and finds the size of the engine's disk.
 */
import { statfs } from 'node:fs/promises';
import Docker from 'dockerode';
import { LABELS } from '../engine/engine';
import type { CacheEntry, ImageFacts } from './imagePolicy';
import type { ImageEvents, ImageSnapshot, ImageStore } from './imageStore';

/** The tag every image the agent builds carries (`bytenite-ctx:<digest prefix>`). */
export const IMAGE_REPO = 'bytenite-ctx';

interface DfImage {
  Id: string;
  RepoTags?: string[] | null;
  Created: number;
  Size: number;
  SharedSize: number;
  Containers: number;
  Labels?: Record<string, string> | null;
}

function tags(i: DfImage): string[] {
  return (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
}

export class DockerImages implements ImageStore {
  events?: ImageEvents;
  private builds = 0;

  constructor(private readonly docker: Docker, private readonly pendingImages: () => ReadonlySet<string> = () => new Set()) {}

  /** The engine's side of a build (`buildKit`: built with BuildKit, version 2): the images it made, and its end. */
  buildStarted(buildKit = false): { made(shortId: string): void; ended(ok: boolean): void } {
    this.builds++;
    let ended = false;
    return {
      made: (id) => this.events?.made(id),
      ended: (ok) => {
        if (ended) return;
        ended = true;
        this.builds--;
        this.events?.buildEnded(ok, buildKit);
      },
    };
  }

  containerStarted(): void {
    this.events?.containerStarted();
  }

  building(): boolean {
    return this.builds > 0;
  }

  pending(): ReadonlySet<string> {
    return this.pendingImages();
  }

  async snapshot(agentId: string): Promise<ImageSnapshot> {
    const [df, all] = await Promise.all([
      diskUsage(() => this.dial<{ Images?: DfImage[] | null; BuildCache?: Array<{ Size: number }> | null; BuilderSize?: number }>(
        // `type` (API 1.42+) spares the engine measuring every container and volume; older ones ignore it.
        '/system/df?type=image&type=build-cache', 'GET')),
      this.docker.listImages({ all: true }),
    ]);
    const images: ImageFacts[] = [];
    const dangling: ImageFacts[] = [];
    const untagged: CacheEntry[] = [];
    for (const i of df.Images ?? []) {
      const labels = i.Labels ?? {};
      const t = tags(i);
      const facts: ImageFacts = {
        id: i.Id, digest: labels[LABELS.digest] ?? '', uniqueBytes: Math.max(0, i.Size - Math.max(0, i.SharedSize)),
        createdMs: i.Created * 1000, containers: Math.max(0, i.Containers),
      };
      if (labels[LABELS.agent] === agentId && labels[LABELS.managed] === '1' && facts.digest) {
        // Tagged by anyone but the agent (`docker tag`): someone wants it; it is theirs now.
        if (t.length === 0) dangling.push(facts);
        else if (t.every((x) => x.startsWith(`${IMAGE_REPO}:`))) images.push(facts);
      } else if (t.length === 0 && !labels[LABELS.managed]) {
        untagged.push({ id: i.Id, bytes: facts.uniqueBytes, createdMs: facts.createdMs });
      }
    }
    const buildKitBytes = df.BuildCache?.length ? df.BuildCache.reduce((n, c) => n + (c.Size ?? 0), 0) : df.BuilderSize ?? 0;
    return { images, dangling, untagged, allIds: new Set(all.map((i) => i.Id.replace(/^sha256:/, '').slice(0, 12))), buildKitBytes };
  }

  async remove(id: string): Promise<boolean> {
    try {
      await this.docker.getImage(id).remove({ force: false, noprune: false });
      return true;
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) return true;
      if (status === 409) return false; // in use, has children, or tagged elsewhere: the engine keeps it
      throw err;
    }
  }

  async pruneBuildKit(keepBytes: number): Promise<number> {
    const res = await this.dial<{ SpaceReclaimed?: number }>(`/build/prune?keep-storage=${Math.max(0, Math.floor(keepBytes))}`, 'POST');
    return res?.SpaceReclaimed ?? 0;
  }

  private dial<T>(pathAndQuery: string, method: 'GET' | 'POST'): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.docker.modem.dial({ path: pathAndQuery, method, statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' } },
        (err: Error | null, data: unknown) => (err ? reject(err) : resolve(data as T))),
    );
  }

  async diskBytes(): Promise<{ bytes: number; dir: string } | undefined> {
    // Only an engine reached through a local socket shares this machine's file systems.
    if (!(this.docker.modem as { socketPath?: string }).socketPath) return undefined;
    try {
      const dir = (await this.docker.info()).DockerRootDir as string;
      const s = await statfs(dir);
      return { bytes: s.blocks * s.bsize, dir };
    } catch {
      return undefined; // the engine runs elsewhere (a socket forwarded from a VM or a container)
    }
  }
}

/** One /system/df of this process at a time: the engine answers a second one with 500 while one runs. */
let dfChain: Promise<unknown> = Promise.resolve();

/**
 * Asks for the engine's disk usage, one request at a time here and again after a pause while another
 * client's (another agent, `docker system df`) holds the engine's lock ("a disk usage operation is already running").
 */
export function diskUsage<T>(ask: () => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await ask();
      } catch (err) {
        const busy = (err as { statusCode?: number; json?: { message?: string } }).statusCode === 500
          && /already running/.test((err as { json?: { message?: string } }).json?.message ?? '');
        if (!busy || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const p = dfChain.then(run, run);
  dfChain = p.catch(() => undefined);
  return p;
}
