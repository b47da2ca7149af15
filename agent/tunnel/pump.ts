/**
 * Carries one TCP connection over one WebSocket, both ways, on either end of a port forward (the CLI's
 * local socket, the agent's connection to the container). Each forwarded connection has a WebSocket of
 * its own, so TCP's own flow control holds back a slow reader's connection and nothing else: neither the
 * other forwards nor the run's events, which travel on other sockets.
 *
 * On the WebSocket, binary frames are the bytes; the text frame `end` says the sender's side of the TCP
 * connection finished writing (a half-close, which HTTP clients such as `nc -N` rely on). A close with code
 * 1000 follows once both directions have ended; any other close carries the reason the tunnel was cut
 * (the run ended, the container closed, an error), and the socket is then closed at once.
 */
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';

/** Bytes sent on the WebSocket but not yet written to its socket beyond which the TCP side stops being read. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

/** Close codes of a tunnel's WebSocket (4000-4999 are the application's). */
export const TUNNEL_CLOSE = {
  done: 1000,
  /** The run's container stopped or the run ended. */
  runEnded: 4001,
  /** The TCP connection at the other end failed (reset, refused, error). */
  peerFailed: 4002,
} as const;

export interface PumpOptions {
  /** Called once when the tunnel is over, with the close code and reason (code 1000: a clean end). */
  onClose?(code: number, reason: string): void;
}

export function pump(ws: WebSocket, socket: Duplex, opts: PumpOptions = {}): void {
  let inFlight = 0;
  let localEnded = false; // the socket's reader saw FIN: `end` was sent
  let remoteEnded = false; // the WebSocket said `end`: the socket's writer was ended
  let over = false;

  const finish = (code: number, reason: string) => {
    if (over) return;
    over = true;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason.slice(0, 120));
    if (code === TUNNEL_CLOSE.done) socket.end();
    else socket.destroy();
    opts.onClose?.(code, reason);
  };
  const maybeDone = () => {
    if (localEnded && remoteEnded) finish(TUNNEL_CLOSE.done, '');
  };

  socket.on('data', (chunk: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    inFlight += chunk.length;
    ws.send(chunk, { binary: true }, () => {
      inFlight -= chunk.length;
      if (socket.isPaused() && inFlight < LOW_WATER && !over) socket.resume();
    });
    if (inFlight > HIGH_WATER) socket.pause();
  });
  socket.on('end', () => {
    localEnded = true;
    if (ws.readyState === ws.OPEN) ws.send('end');
    maybeDone();
  });
  socket.on('error', (err) => finish(TUNNEL_CLOSE.peerFailed, err.message));
  socket.on('close', () => {
    if (!over) finish(localEnded && remoteEnded ? TUNNEL_CLOSE.done : TUNNEL_CLOSE.peerFailed, 'the connection closed');
  });

  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      if (data.toString() === 'end' && !remoteEnded) {
        remoteEnded = true;
        socket.end();
        maybeDone();
      }
      return;
    }
    if (remoteEnded || over) return;
    // The socket's buffer is the only one: past it the WebSocket is not read, and TCP pushes back on the sender.
    if (!socket.write(data)) {
      ws.pause();
      socket.once('drain', () => ws.resume());
    }
  });
  ws.on('close', (code, reason) => {
    if (over) return;
    over = true;
    if (code === TUNNEL_CLOSE.done && remoteEnded) socket.end();
    else socket.destroy();
    opts.onClose?.(code, reason.toString());
  });
  ws.on('error', () => {
    if (!over) finish(TUNNEL_CLOSE.peerFailed, 'the tunnel failed');
  });
}
