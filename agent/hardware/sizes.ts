/**
 * Parsing of the sizes users type (`--memory 4g`, `--gpu h100:2`, `--timeout 10m`) and of the hardware
 * labels a Dockerfile may carry (`LABEL bytenite.cpus=2 bytenite.memory=4g bytenite.gpu=h100:1`), shared by
 * the CLI and the extension so both read them the same way.
 */
import type { HardwareRequest, VolumeMount } from '../protocol';
import { parseVolumeLabel } from '../volumes/volumeFlag';

const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Docker's convention: a number with an optional b/k/m/g/t suffix (binary units; `Mi`, `GiB` also read). Returns MiB. */
export function parseMemory(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt])?(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new Error(`cannot read memory size "${text}": use a number with a unit, e.g. 512m or 4g`);
  const bytes = Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()];
  const mib = Math.floor(bytes / 1024 ** 2);
  if (mib < 6) throw new Error(`memory "${text}" is below the 6 MiB minimum a container needs (a bare number means bytes, as in docker)`);
  return mib;
}

/** A size in bytes as Docker writes them: `512m`, `20g`, `1.5t` (binary units; a bare number is bytes). */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt])?(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new Error(`cannot read size "${text}": use a number with a unit, e.g. 512m or 20g`);
  return Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]);
}

/** `512 B`, `3.0 KiB`, `1.5 MiB`, `2.00 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function parseCpus(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`cannot read vCPUs "${text}": use a positive number, e.g. 2 or 0.5`);
  return n;
}

/** `h100`, `h100:2` → { type, count }. */
export function parseGpu(text: string): NonNullable<HardwareRequest['gpu']> {
  const m = /^\s*([A-Za-z0-9_-]+)(?::(\d+))?\s*$/.exec(text);
  if (!m || (m[2] !== undefined && Number(m[2]) < 1)) throw new Error(`cannot read GPU "${text}": use TYPE or TYPE:COUNT, e.g. h100:2`);
  return { type: m[1].toLowerCase(), count: m[2] ? Number(m[2]) : 1 };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `10m`, `1h30m`, `1500ms`; a bare number is seconds. Returns milliseconds. */
export function parseDuration(text: string): number {
  if (/^\s*\d+(\.\d+)?\s*$/.test(text)) return Math.round(Number(text) * 1000);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text.replace(/\s+/g, '')) {
    throw new Error(`cannot read duration "${text}": use e.g. 30s, 10m, 1h30m`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * DURATION_UNITS[p[2]], 0));
}

/** `7 days`, `12 h`, `90 min`, `30 s`: a retention time as the agent states it. */
export function formatRetention(ms: number): string {
  const d = ms / 86_400_000;
  if (Number.isInteger(d)) return `${d} day${d === 1 ? '' : 's'}`;
  const h = ms / 3_600_000;
  if (Number.isInteger(h)) return `${h} h`;
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 1000)} s`;
}

export interface HardwareLabels {
  cpus?: number;
  memoryMiB?: number;
  gpu?: HardwareRequest['gpu'];
  /** `bytenite.volume=NAME:/path[:ro]` (several comma-separated, or several labels): named volumes to mount. */
  volumes?: VolumeMount[];
  /** Labels that were present but could not be read, with why. */
  problems: string[];
}

/**
 * Reads `bytenite.*` hardware labels from a Dockerfile's LABEL instructions (line continuations and quotes
 * understood). Unknown `bytenite.*` keys are reported, not ignored, so a typo does not pass silently.
 */
export function readHardwareLabels(dockerfile: string): HardwareLabels {
  const out: HardwareLabels = { problems: [] };
  const joined = dockerfile.replace(/\\\r?\n/g, ' ');
  for (const line of joined.split(/\r?\n/)) {
    const m = /^\s*LABEL\s+(.*)$/i.exec(line);
    if (!m) continue;
    for (const kv of m[1].matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S+)/g)) {
      const key = kv[1].replace(/^["']|["']$/g, '');
      const value = kv[2].replace(/^["']|["']$/g, '');
      if (!key.startsWith('bytenite.')) continue;
      try {
        if (key === 'bytenite.cpus') out.cpus = parseCpus(value);
        else if (key === 'bytenite.memory') out.memoryMiB = parseMemory(value);
        else if (key === 'bytenite.gpu') out.gpu = value === 'none' ? undefined : parseGpu(value);
        else if (key === 'bytenite.volume') out.volumes = [...(out.volumes ?? []), ...parseVolumeLabel(value)];
        else if (!['bytenite.name', 'bytenite.description'].includes(key)) {
          out.problems.push(`unknown label ${key} (known: bytenite.cpus, bytenite.memory, bytenite.gpu, bytenite.volume)`);
        }
      } catch (err) {
        out.problems.push(`${key}: ${(err as Error).message}`);
      }
    }
  }
  return out;
}
