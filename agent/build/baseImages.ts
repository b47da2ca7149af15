/**
 * The base images a Dockerfile names (its FROM lines), by registry host. On a shared agent a base image that
 * another tenant pulled with its credentials stays on the engine, and both builders use an image the engine
 * has without asking its registry: so when a build names a host that someone else holds credentials for,
 * the agent has the build ask the registry (`pull`), and the registry decides with this tenant's own.
 */
import { readFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Parser, type ReadEntry } from 'tar';
import type { BuildRequest } from '../engine/engine';
import { DEFAULT_TENANT } from '../auth/tokens';
import { registryHost, type TenantRegistryAuth } from './registryAuth';

/** A FROM whose image cannot be known before the build (an ARG with no value): its host is unknown. */
export const UNKNOWN_HOST = '*';

/** Registry hosts of the images the Dockerfile's FROM lines name (stages and `scratch` left out). */
export function baseImageHosts(dockerfile: string, buildArgs: Record<string, string> = {}): Set<string> {
  const hosts = new Set<string>();
  const stages = new Set<string>();
  const args = new Map<string, string>();
  let beforeFirstFrom = true;
  // Line continuations joined, comments and blank lines dropped, as the Dockerfile parser reads them.
  const lines = dockerfile.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [word, ...rest] = line.split(/\s+/);
    const kw = word.toUpperCase();
    if (kw === 'ARG' && beforeFirstFrom) {
      for (const a of rest) {
        const eq = a.indexOf('=');
        const name = eq < 0 ? a : a.slice(0, eq);
        const value = buildArgs[name] ?? (eq < 0 ? undefined : a.slice(eq + 1).replace(/^"(.*)"$/, '$1'));
        if (value !== undefined) args.set(name, value);
      }
      continue;
    }
    if (kw !== 'FROM') continue;
    beforeFirstFrom = false;
    const words = rest.filter((w) => !w.startsWith('--'));
    if (!words.length) continue;
    const image = words[0].replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a: string | undefined, b: string | undefined) => args.get((a ?? b)!) ?? m);
    if (words[1]?.toLowerCase() === 'as' && words[2]) stages.add(words[2].toLowerCase());
    if (image.includes('$')) hosts.add(UNKNOWN_HOST);
    else if (image.toLowerCase() !== 'scratch' && !stages.has(image.toLowerCase())) hosts.add(hostOf(image));
  }
  return hosts;
}

/** The registry of an image reference, as Docker reads it: a first part with a dot, a colon or `localhost`. */
export function hostOf(image: string): string {
  const slash = image.indexOf('/');
  const first = slash < 0 ? '' : image.slice(0, slash);
  const isHost = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  return registryHost(isHost ? first : 'docker.io');
}

/** The build's Dockerfile text, from the content store or the context tar; undefined when it is not there. */
export async function readDockerfile(req: BuildRequest): Promise<string | undefined> {
  const name = req.dockerfile.replace(/^\.\//, '');
  const stored = typeof req.contextTar === 'function' ? req.contextTar.stored : undefined;
  if (stored) {
    const entry = stored.entries.find((e) => e.path === name && e.type === 'file');
    if (!entry || entry.type !== 'file') return undefined;
    await stored.files.arrival?.(entry.sha256);
    return readFile(stored.files.path(entry.sha256), 'utf8');
  }
  const tarStream = typeof req.contextTar === 'string' ? createReadStream(req.contextTar) : req.contextTar();
  return new Promise((resolve, reject) => {
    let found: string | undefined;
    const parser = new Parser({
      filter: (p) => p.replace(/^\.\//, '') === name,
      onReadEntry: (e: ReadEntry) => {
        const chunks: Buffer[] = [];
        e.on('data', (c: Buffer) => chunks.push(c));
        e.on('end', () => (found = Buffer.concat(chunks).toString('utf8')));
      },
    });
    parser.on('end', () => resolve(found));
    parser.on('error', reject);
    (tarStream as NodeJS.ReadableStream).on('error', reject);
    (tarStream as NodeJS.ReadableStream).pipe(parser as unknown as NodeJS.WritableStream);
  });
}

/** Should this build ask the registry for its base images (`pull`), though the engine may have them? */
export async function mustAskRegistry(auth: TenantRegistryAuth, req: BuildRequest): Promise<boolean> {
  // Asked first, as it is cheap: on an agent where no one else holds credentials (most), the Dockerfile is not read.
  const held = await auth.othersHosts(req.tenant ?? DEFAULT_TENANT);
  if (!held.size) return false;
  const text = await readDockerfile(req).catch(() => undefined);
  // A Dockerfile that is not in the context: the builder fails on it anyway, reaching no one's image.
  if (text === undefined) return false;
  const hosts = baseImageHosts(text, req.buildArgs);
  return hosts.has(UNKNOWN_HOST) || [...hosts].some((h) => held.has(h));
}
