/**
 * The session's shared key for a context: BuildKit keys its kept copy of a local source by it, so the same
 * key on every build of one context lets the engine ask only for what changed. Scoped by tenant, so two
 * tenants never diff against each other's files; from the client's `contextId` (one per context folder) or,
 * without one, from the context's digest (a copy per content: correct, only never incremental).
 */
import { createHash } from 'node:crypto';
import type { RunSpec } from '../protocol';

export function contextKey(tenant: string, spec: Pick<RunSpec, 'contextId' | 'contextDigest'>): string {
  const what = spec.contextId ? `id\n${spec.contextId}` : `digest\n${spec.contextDigest}`;
  return createHash('sha256').update(`bytenite-context\n${tenant}\n${what}`).digest('hex');
}

/** A client's id for a context folder: this machine and user, and the folder, hashed (the path stays private). */
export function contextIdOf(host: string, user: string, contextDir: string): string {
  return createHash('sha256').update(`bytenite-context-dir\n${host}\n${user}\n${contextDir}`).digest('hex').slice(0, 32);
}

/**
 * The shared key of a context the agent reads from the client's own folder: the tenant and the folder's
 * identity (its real path, device and inode), so two folders never share the engine's kept copy, nor a folder
 * and a new one made later at the same path.
 */
export function localContextKey(tenant: string, local: { path: string; folder: { dev: string; ino: string } }): string {
  return createHash('sha256').update(`bytenite-local-context\n${tenant}\n${local.folder.dev}:${local.folder.ino}\n${local.path}`).digest('hex');
}
