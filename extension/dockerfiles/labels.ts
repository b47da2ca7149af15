/**
 * Reads what the extension needs from a Dockerfile's text: the line of the first `FROM`, and hardware
 * defaults from `LABEL bytenite.cpus=2 bytenite.memory=4g bytenite.gpu=h100:1` (no YAML anywhere). The
 * labels are parsed by the same code as the CLI's (agent/hardware/sizes.ts), so both read them alike.
 */
import type { HardwareRequest } from '../../agent/protocol';
import { readHardwareLabels, type HardwareLabels } from '../../agent/hardware/sizes';

export { readHardwareLabels, type HardwareLabels };

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

/** True when the Dockerfile sets any hardware label (`bytenite.gpu=none` counts: the key is present). */
export const hasHardwareLabels = (labels: HardwareLabels) =>
  labels.cpus !== undefined || labels.memoryMiB !== undefined || 'gpu' in labels;

/** Applies labels over a base request. */
export function applyLabels(base: HardwareRequest, labels: HardwareLabels): HardwareRequest {
  const hw: HardwareRequest = { cpus: labels.cpus ?? base.cpus, memoryMiB: labels.memoryMiB ?? base.memoryMiB };
  const gpu = 'gpu' in labels ? labels.gpu : base.gpu;
  if (gpu) hw.gpu = gpu;
  return hw;
}
