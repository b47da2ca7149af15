/**
 * `-v NAME:/path[:ro]`, read as `docker run -v` reads it, except that the source is always a named volume of
 * the run's tenant on the agent: a host path (or an anonymous volume) is refused, since the agent's disk is
 * not the client's and a run must never reach the agent's own files.
 */
import type { VolumeMount } from '../protocol/messages';
import { protocolSchemas } from '../protocol/parse';

const HOST_PATH = 'host paths are never mounted: a run gets named volumes of its tenant on the agent (-v NAME:/path[:ro]); put the files it needs in the build context';

export function parseVolume(value: string, flag = '-v'): VolumeMount {
  const what = flag.endsWith('=') ? `${flag}${value}` : `${flag} ${value}`;
  const parts = value.split(':');
  const source = parts[0] ?? '';
  if (source.startsWith('/') || source.startsWith('.') || source.startsWith('~') || /[\\/]/.test(source)
    || (/^[A-Za-z]$/.test(source) && (parts[1] ?? '').startsWith('\\'))) { // C:\data, a Windows drive
    throw new Error(`${what}: ${HOST_PATH}`);
  }
  if (parts.length === 1) throw new Error(`${what}: give a volume name and where to mount it, NAME:/path (anonymous volumes are not kept; name it)`);
  if (parts.length > 3) throw new Error(`${what}: use NAME:/path[:ro]`);
  if (!protocolSchemas().volumeName.safeParse(source).success) {
    throw new Error(`${what}: ${JSON.stringify(source)} is not a volume name (letters, digits, _ . -, up to 64, starting with a letter or digit)`);
  }
  const mode = parts[2];
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new Error(`${what}: the mode is ro or rw (got ${JSON.stringify(mode)})`);
  const parsed = protocolSchemas().VolumeMount.safeParse({ name: source, path: parts[1], readOnly: mode === 'ro' });
  if (!parsed.success) {
    throw new Error(`${what}: ${JSON.stringify(parts[1])} is not a path to mount at: an absolute path inside the container, not /, without , or . and .. segments`);
  }
  return parsed.data;
}

/** `LABEL bytenite.volume=NAME:/path[:ro]`, several separated by commas. */
export function parseVolumeLabel(value: string): VolumeMount[] {
  return value.split(',').map((v) => v.trim()).filter(Boolean).map((v) => parseVolume(v, 'bytenite.volume='));
}

/** The label's volumes with the flags' over them: a flag for the same container path replaces the label's mount. */
export function mergeVolumes(fromLabels: readonly VolumeMount[], fromFlags: readonly VolumeMount[]): VolumeMount[] {
  const byPath = new Map<string, VolumeMount>();
  for (const m of [...fromLabels, ...fromFlags]) {
    byPath.delete(m.path);
    byPath.set(m.path, m);
  }
  return [...byPath.values()];
}
