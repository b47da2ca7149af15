/**
 * Reading a container through the Docker Engine API, the same on one machine and on a Swarm node: its
 * stats stream turned into a run's figures, and its output folder read out as a tar.
 */
import type Docker from 'dockerode';
import type { ContainerHandlers } from './engine';
import { statsSample } from './dockerStats';

/** Follows the container's stats (about one sample a second) until the returned function is called. */
export function followStats(container: Docker.Container, handlers: ContainerHandlers): () => void {
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

/** The folder `dir` of a (stopped) container as a tar stream; undefined when the container has no such folder. */
export async function openOutputs(container: Docker.Container, dir: string): Promise<NodeJS.ReadableStream | undefined> {
  try {
    return await container.getArchive({ path: dir });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}
