/**
 * Reads what the extension needs from a Dockerfile's text: the line of the first `FROM`, and hardware
 * defaults from `LABEL bytenite.cpus=2 bytenite.memory=4g bytenite.gpu=h100:1` (no YAML anywhere).
 */
import type { HardwareRequest } from '../../agent/protocol';

export interface HardwareLabels {
  cpus?: number;
  memoryMiB?: number;
  /** `null`: the label says `none`. */
  gpu?: { type: string; count: number } | null;
  /** Labels that could not be read, with why. */
  problems: string[];
}

/** Joins backslash continuations; returns instructions with the line each starts on. */
export function instructions(text: string): { line: number; text: string }[] {
  const lines = text.split(/\r?\n/);
  const out: { line: number; text: string }[] = [];
  let current: { line: number; text: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmed = raw.trim();
    if (!current && (trimmed === '' || trimmed.startsWith('#'))) continue;
    if (current && trimmed.startsWith('#')) continue; // comments inside a continuation are dropped by Docker too
    const continued = /\\\s*$/.test(raw);
    const part = continued ? raw.replace(/\\\s*$/, '') : raw;
    if (current) current.text += ' ' + part.trim();
    else current = { line: i, text: part.trim() };
    if (!continued) {
      out.push(current);
      current = undefined;
    }
  }
  if (current) out.push(current);
  return out;
}

/** Zero-based line of the first FROM instruction, or undefined. */
export function firstFromLine(text: string): number | undefined {
  return instructions(text).find((i) => /^FROM\s/i.test(i.text))?.line;
}

/** Splits `a=1 b="two words" c='x'` into pairs; the old `LABEL key value` form gives one pair. */
function labelPairs(args: string): [string, string][] {
  const pairs: [string, string][] = [];
  const re = /\s*([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/y;
  let m: RegExpExecArray | null;
  let pos = 0;
  let matched = false;
  while (pos < args.length && (m = re.exec(args))) {
    matched = true;
    let v = m[2];
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    else if (v.startsWith("'")) v = v.slice(1, -1);
    pairs.push([m[1], v]);
    pos = re.lastIndex;
  }
  if (!matched) {
    const legacy = /^(\S+)\s+(.*)$/.exec(args.trim());
    if (legacy) pairs.push([legacy[1], legacy[2].replace(/^"(.*)"$/, '$1')]);
  }
  return pairs;
}

/** Memory like `4g`, `4GiB`, `512m`, `2048` (MiB when no unit), as MiB. */
export function parseMemory(value: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] || 'm').toLowerCase();
  const mib = unit === 'k' ? n / 1024 : unit === 'm' ? n : unit === 'g' ? n * 1024 : n * 1024 * 1024;
  return mib >= 6 ? Math.round(mib) : undefined;
}

export function parseHardwareLabels(text: string): HardwareLabels {
  const result: HardwareLabels = { problems: [] };
  for (const ins of instructions(text)) {
    const m = /^LABEL\s+(.*)$/i.exec(ins.text);
    if (!m) continue;
    for (const [key, value] of labelPairs(m[1])) {
      switch (key) {
        case 'bytenite.cpus': {
          const n = Number(value);
          if (Number.isFinite(n) && n > 0) result.cpus = n;
          else result.problems.push(`bytenite.cpus=${value}: expected a number of vCPUs, e.g. 2`);
          break;
        }
        case 'bytenite.memory': {
          const mib = parseMemory(value);
          if (mib) result.memoryMiB = mib;
          else result.problems.push(`bytenite.memory=${value}: expected a size like 4g or 512m`);
          break;
        }
        case 'bytenite.gpu': {
          if (/^(none|0|)$/i.test(value.trim())) {
            result.gpu = null;
            break;
          }
          const g = /^([a-z0-9]+)(?::(\d+))?$/i.exec(value.trim());
          if (g) result.gpu = { type: g[1].toLowerCase(), count: g[2] ? Number(g[2]) : 1 };
          else result.problems.push(`bytenite.gpu=${value}: expected type:count, e.g. h100:1, or none`);
          break;
        }
      }
    }
  }
  return result;
}

/** Applies labels over a base request. */
export function applyLabels(base: HardwareRequest, labels: HardwareLabels): HardwareRequest {
  const hw: HardwareRequest = { cpus: labels.cpus ?? base.cpus, memoryMiB: labels.memoryMiB ?? base.memoryMiB };
  const gpu = labels.gpu === undefined ? base.gpu : labels.gpu ?? undefined;
  if (gpu) hw.gpu = gpu;
  return hw;
}
