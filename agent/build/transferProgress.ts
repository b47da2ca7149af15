/**
 * Upload progress of a BuildKit build's context transfer: the engine pulls files over DiffCopy while the
 * build runs, so the figures are read from the session at a steady pace (not per DATA packet: a 200 MB
 * context is thousands of packets) and told only when they changed, then once more when the build ends.
 */
export interface Transfer {
  bytesDone: number;
  bytesTotal: number;
}

/** How often the figures are read during a transfer. */
const EVERY_MS = 250;

export class TransferProgress {
  private timer?: NodeJS.Timeout;
  private last?: Transfer;

  constructor(private readonly read: () => Transfer, private readonly tell: (t: Transfer) => void, private readonly everyMs = EVERY_MS) {}

  start(): void {
    this.timer ??= setInterval(() => this.tick(false), this.everyMs);
  }

  /** Tells the figures if they changed; `final`: whatever they are (the build ended), and stops. */
  tick(final: boolean): void {
    const t = this.read();
    if (final) this.stop();
    if (!final && this.last && t.bytesDone === this.last.bytesDone && t.bytesTotal === this.last.bytesTotal) return;
    if (!final && !this.last && t.bytesTotal === 0) return; // nothing asked for yet
    this.last = t;
    this.tell(t);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
