/**
 * Joins two connections: bytes both ways with the streams' own backpressure (a stalled reader on one
 * forwarded connection holds back only that connection), a FIN passed on as a FIN (half-close), and an
 * error or reset on either side closing both.
 */
import type { Duplex } from 'node:stream';

export function splice(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  const cut = () => {
    a.destroy();
    b.destroy();
  };
  a.once('error', cut);
  b.once('error', cut);
  // Closed without its FIN (a reset, the run's end cutting it): the other side goes at once, not gracefully.
  a.once('close', () => !a.readableEnded && b.destroy());
  b.once('close', () => !b.readableEnded && a.destroy());
}
