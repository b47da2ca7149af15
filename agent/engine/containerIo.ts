/**
 * Reading a container through the Docker Engine API, the same on one machine and on a Swarm node: its
 * stats stream turned into a run's figures, and its output folder read out as a tar.
 */
import type Docker from 'dockerode';
import type { ContainerHandlers } from './engine';
import { statsSample } from './dockerStats';

/**
 * Follows the container's stats (about one sample a second) until the returned function is called.
 * `poll`: ask for one sample a second instead of streaming; Podman 4.3 does not flush its stats stream
 * (a sample's bytes arrive seconds late, several at once, or not before a short run ends).
 */
export function followStats(container: Docker.Container, handlers: ContainerHandlers, poll = false): () => void {
  if (poll) return pollStats(container, handlers);
  let stream: NodeJS.ReadableStream & { destroy?: () => void } | undefined;
  let stopped = false;
  let previous: Parameters<typeof statsSample>[0] | undefined;
  let buf = '';
  container.stats({ stream: true }).then((s) => {
    stream = s as typeof stream;
    if (stopped) return stream!.destroy?.();
    s.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        try {
          const sample = JSON.parse(line);
          // The first sample has no previous reading, so its CPU figure means nothing: skip it.
          if (previous) handlers.onStats(statsSample(previous, sample));
          previous = sample;
        } catch {
          /* a torn line from a closing stream */
        }
      }
    });
    s.on('error', () => {});
  }, () => {});
  return () => {
    stopped = true;
    stream?.destroy?.();
  };
}

function pollStats(container: Docker.Container, handlers: ContainerHandlers): () => void {
  let previous: Parameters<typeof statsSample>[0] | undefined;
  let previousAt = 0;
  let busy = false;
  const poll = () => {
    if (busy) return;
    busy = true;
    container.stats({ stream: false }).then((sample) => {
      const cur = sample as Parameters<typeof statsSample>[0];
      // A stopped container's sample is all zeros: nothing to report.
      if (!cur.memory_stats?.limit) return;
      // Podman's system_cpu_usage leaves out the host's idle time, so the ratio Docker's figure is made of
      // means nothing: CPU % is the container's CPU time over the wall-clock time between the two samples.
      const at = Date.parse((sample as { read?: string }).read ?? '') || Date.now();
      if (previous) {
        const figures = statsSample(previous, cur);
        const used = (cur.cpu_stats?.cpu_usage?.total_usage ?? 0) - (previous.cpu_stats?.cpu_usage?.total_usage ?? 0);
        const wallNs = (at - previousAt) * 1e6;
        handlers.onStats({ ...figures, cpuPercent: wallNs > 0 && used > 0 ? Math.round((used / wallNs) * 1000) / 10 : 0 });
      }
      previous = cur;
      previousAt = at;
    }, () => {}).finally(() => (busy = false));
  };
  // The first reading is only the baseline of the next: taken at once, the first figure comes a second after
  // stats are asked, not two (a 3 s run still gets two).
  poll();
  const timer = setInterval(poll, 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** Go's os.ModeDir in the engine's path stat. */
const MODE_DIR = 2 ** 31;

/**
 * Whether `dir` is the output folder just as the agent put it in: a folder still carrying the time 0 of
 * outputSkeleton.ts. Adding or removing an entry in a folder sets its time, so such a folder is empty. The
 * engine's stat (HEAD) costs it 4 ms of CPU where the GET of that empty folder costs 109 ms
 * (bench/engineCallCpu.ts): most runs write no outputs. Any doubt (no stat, another engine's answer) says no.
 */
async function untouched(container: Docker.Container, dir: string): Promise<boolean | 'missing'> {
  let res: (NodeJS.ReadableStream & { headers?: Record<string, string | undefined>; destroy?(): void }) | undefined;
  try {
    res = await container.infoArchive({ path: dir }) as typeof res;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode === 404 ? 'missing' : false;
  }
  res?.destroy?.();
  try {
    const stat = JSON.parse(Buffer.from(res?.headers?.['x-docker-container-path-stat'] ?? '', 'base64').toString('utf8')) as { mode?: number; mtime?: string };
    return typeof stat.mode === 'number' && stat.mode >= MODE_DIR && Date.parse(stat.mtime ?? '') === 0;
  } catch {
    return false;
  }
}

/** The folder `dir` of a (stopped) container as a tar stream; undefined when the container has no such folder, or an empty one. */
export async function openOutputs(container: Docker.Container, dir: string): Promise<NodeJS.ReadableStream | undefined> {
  if (await untouched(container, dir)) return undefined;
  try {
    return await container.getArchive({ path: dir });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}
