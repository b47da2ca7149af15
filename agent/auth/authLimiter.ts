/**
 * Slows down token guessing: each client address has a bucket of failed attempts that refills slowly. While
 * an address's bucket is empty, its connections are refused with 429 before the token is even looked at,
 * so guesses from it cannot go faster than the refill rate. Good connections cost nothing.
 */

export interface AuthLimitOptions {
  /** Failed attempts an address may make in a burst. */
  burst: number;
  /** Failed attempts given back per second. */
  refillPerSecond: number;
}

export const DEFAULT_AUTH_LIMIT: AuthLimitOptions = { burst: 10, refillPerSecond: 0.5 };

/** Addresses remembered at most; beyond it the oldest are forgotten (memory stays bounded under a flood). */
const MAX_ADDRESSES = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class AuthLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly opts: AuthLimitOptions = DEFAULT_AUTH_LIMIT, private readonly now = () => Date.now()) {}

  /** Seconds until `address` may try again; 0 when it may try now. */
  retryAfter(address: string): number {
    const b = this.refill(address);
    if (!b || b.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - b.tokens) / this.opts.refillPerSecond));
  }

  /** Records a failed attempt from `address`. */
  failed(address: string): void {
    const b = this.refill(address) ?? { tokens: this.opts.burst, at: this.now() };
    b.tokens = Math.max(0, b.tokens - 1);
    this.buckets.delete(address); // re-insert: the Map's order is then least recently failed first
    this.buckets.set(address, b);
    if (this.buckets.size > MAX_ADDRESSES) this.buckets.delete(this.buckets.keys().next().value!);
  }

  private refill(address: string): Bucket | undefined {
    const b = this.buckets.get(address);
    if (!b) return undefined;
    const now = this.now();
    b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) / 1000) * this.opts.refillPerSecond);
    b.at = now;
    if (b.tokens >= this.opts.burst) {
      this.buckets.delete(address);
      return undefined;
    }
    return b;
  }
}
