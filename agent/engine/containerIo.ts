/**
 * Reading a container through the Docker Engine API, the same on one machine and on a Swarm node: its
 * stats stream turned into a run's figures, and its output folder copied out as a tar.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import * as tar from 'tar';
import type { ContainerHandlers, OutputArchive } from './engine';
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

/** Copies `dir` out of the (stopped) container into `tarPath`; undefined when it holds no file. */
export async function saveOutputs(container: Docker.Container, dir: string, tarPath: string): Promise<OutputArchive | undefined> {
  let archive: NodeJS.ReadableStream;
  try {
    archive = await container.getArchive({ path: dir });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
  await mkdir(path.dirname(tarPath), { recursive: true });
  await pipeline(archive, createWriteStream(tarPath));
  let files = 0;
  let bytes = 0;
  await tar.t({
    file: tarPath,
    onReadEntry: (e) => {
      if (e.type === 'File' || e.type === 'OldFile') {
        files++;
        bytes += e.size ?? 0;
      }
    },
  });
  if (files === 0) {
    await rm(tarPath, { force: true });
    return undefined;
  }
  return { tarPath, files, bytes };
}
