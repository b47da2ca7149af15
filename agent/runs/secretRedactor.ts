/**
 * Hides the values of a run's secret env variables (`spec.secretEnv`) in what the run prints and in the
 * messages the agent reports about it: each occurrence becomes `***`. Output arrives in chunks, so the end of
 * a chunk that could be the start of a secret is held back until the next chunk (or the end) shows whether
 * it is one: a secret split across two chunks is hidden too (when at most MAX_HELD of it is in the first).
 */
export const REDACTED = '***';

/** The most held back at a chunk's end: bounds the work per chunk whatever the secrets' length. */
const MAX_HELD = 4096;

export class SecretRedactor {
  private readonly secrets: string[];
  private readonly held = new Map<string, string>();

  constructor(env: Record<string, string>, names: readonly string[]) {
    // Longest first, so a secret that contains another is hidden whole.
    this.secrets = [...new Set(names.map((n) => env[n]).filter((v): v is string => Boolean(v)))].sort((a, b) => b.length - a.length);
  }

  get active(): boolean {
    return this.secrets.length > 0;
  }

  /** `text` with every secret value replaced. */
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }

  /** The next chunk of `stream`, redacted; may hold back its end (see `flush`). */
  push(stream: string, chunk: string): string {
    if (!this.active) return chunk;
    const text = this.redact((this.held.get(stream) ?? '') + chunk);
    const keep = this.partialSecretAtEnd(text);
    this.held.set(stream, text.slice(text.length - keep));
    return text.slice(0, text.length - keep);
  }

  /** What is still held back for `stream`: at the end of the output it cannot become a secret any more. */
  flush(stream: string): string {
    const rest = this.held.get(stream) ?? '';
    this.held.delete(stream);
    return rest;
  }

  /** Length of the longest end of `text` that is the start of a secret (and not a whole one). */
  private partialSecretAtEnd(text: string): number {
    let best = 0;
    for (const s of this.secrets) {
      const first = s.charCodeAt(0);
      // Earliest start first: the first match is the longest for this secret.
      for (let i = Math.max(0, text.length - Math.min(s.length - 1, MAX_HELD)); i < text.length - best; i++) {
        if (text.charCodeAt(i) === first && s.startsWith(text.slice(i))) {
          best = text.length - i;
          break;
        }
      }
    }
    return best;
  }
}
