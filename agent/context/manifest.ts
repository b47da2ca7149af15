/**
 * The build context as a manifest: the listing (path, type, mode, size, SHA-256 of each file) without the
 * contents, so the agent can ask only for the contents it does not hold. The client cuts it into parts that
 * fit a text frame; the agent checks the whole of it as it checks an archive (no entry may leave the context,
 * the digest must be the one declared) before it asks for anything.
 */
import type { ManifestEntry } from '../protocol';
import { MAX_TEXT_FRAME } from '../protocol/version';
import { BadContextError, checkDockerfilePath, checkEntries } from './checkContext';
import { canonicalPath, contextDigest } from './digest';
import type { ContextEntry } from './listContext';
import { EMPTY_SHA256 } from '../store/blobStore';

/** Most entries one context may list: bounds what the agent holds in memory for one upload. */
export const MAX_MANIFEST_ENTRIES = 1_000_000;

/** Room left in a text frame for the rest of a `context.manifest` message around its entries. */
const PART_BYTES = MAX_TEXT_FRAME / 2;

/** The listing as manifest entries (what the wire carries: no sizes for folders and links). */
export function toManifest(entries: readonly ContextEntry[]): ManifestEntry[] {
  return entries.map((e): ManifestEntry => {
    const mtime = e.mtime !== undefined ? { mtime: e.mtime } : {};
    switch (e.type) {
      case 'file': return { type: 'file', path: e.path, mode: e.mode, size: e.size, sha256: e.sha256, ...mtime };
      case 'dir': return { type: 'dir', path: e.path, mode: e.mode, ...mtime };
      case 'symlink': return { type: 'symlink', path: e.path, mode: e.mode, linkTarget: e.linkTarget, ...mtime };
    }
  });
}

/** Cuts the manifest into parts whose JSON stays well under the text-frame limit. */
export function manifestParts(entries: readonly ManifestEntry[]): ManifestEntry[][] {
  const parts: ManifestEntry[][] = [];
  let part: ManifestEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    const n = Buffer.byteLength(JSON.stringify(e)) + 1;
    if (part.length > 0 && bytes + n > PART_BYTES) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(e);
    bytes += n;
  }
  parts.push(part);
  return parts;
}

export interface CheckedManifest {
  entries: ContextEntry[];
  /** Total size of the files. */
  bytes: number;
  /** Size of each distinct content. */
  sizes: Map<string, number>;
}

/**
 * Checks a whole manifest as the agent received it: every path in its one spelling, nothing that leads out of
 * the context, the Dockerfile a file in it, each content with one size, at most `maxBytes` of files, and the
 * digest the run declared. Throws `BadContextError` with a message for the user.
 */
export function checkManifest(
  manifest: readonly ManifestEntry[], spec: { dockerfile: string; buildArgs: Record<string, string>; contextDigest: string }, maxBytes: number,
): CheckedManifest {
  const q = JSON.stringify;
  const dockerfileProblem = checkDockerfilePath(spec.dockerfile);
  if (dockerfileProblem) throw new BadContextError(dockerfileProblem);
  if (manifest.length > MAX_MANIFEST_ENTRIES) {
    throw new BadContextError(`the manifest lists ${manifest.length} entries; this agent takes at most ${MAX_MANIFEST_ENTRIES}: leave files out with .dockerignore.`);
  }
  const entries: ContextEntry[] = [];
  const sizes = new Map<string, number>();
  let bytes = 0;
  for (const m of manifest) {
    if (m.path.startsWith('/') || m.path.includes('\0') || canonicalPath(m.path) !== m.path) {
      throw new BadContextError(`${q(m.path)} in the manifest is not a plain relative path inside the context (no "/" first, no "." or "..", no empty segment).`, m.path);
    }
    if (m.type === 'file') {
      if (m.size === 0 && m.sha256 !== EMPTY_SHA256) {
        throw new BadContextError(`${q(m.path)} in the manifest is empty but its sha256 is not that of no bytes: list the context again.`, m.path);
      }
      const seen = sizes.get(m.sha256);
      if (seen !== undefined && seen !== m.size) {
        throw new BadContextError(`${q(m.path)} in the manifest has the content of another file (sha256 ${m.sha256.slice(0, 12)}…) with another size: list the context again.`, m.path);
      }
      sizes.set(m.sha256, m.size);
      bytes += m.size;
      entries.push({ type: 'file', path: m.path, mode: m.mode, size: m.size, sha256: m.sha256 });
    } else if (m.type === 'dir') {
      entries.push({ type: 'dir', path: m.path, mode: m.mode, size: 0 });
    } else {
      if (m.linkTarget.includes('\0')) throw new BadContextError(`Symlink ${q(m.path)} in the manifest has a damaged target.`, m.path);
      entries.push({ type: 'symlink', path: m.path, mode: m.mode, size: 0, linkTarget: m.linkTarget });
    }
  }
  if (bytes > maxBytes) {
    throw new BadContextError(`the context holds ${mib(bytes)} of files; this agent takes at most ${mib(maxBytes)}. Leave large files out with .dockerignore.`);
  }
  checkEntries(entries);
  const wanted = canonicalPath(spec.dockerfile) as string;
  const found = entries.find((e) => e.path === wanted);
  if (found?.type !== 'file') {
    throw new BadContextError(`The Dockerfile ${q(wanted)} is not a file in the manifest: check the path, relative to the context folder.`, wanted);
  }
  if (contextDigest(entries, spec.dockerfile, spec.buildArgs) !== spec.contextDigest) {
    throw new BadContextError('the manifest does not match the digest declared in run.create');
  }
  return { entries, bytes, sizes };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
