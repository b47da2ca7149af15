/** A refusal before a WebSocket upgrade (tunnels, exec): a plain HTTP status with the reason as its body. */
import type { Duplex } from 'node:stream';

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 410: 'Gone', 501: 'Not Implemented', 502: 'Bad Gateway' };

export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${message}\n`);
}
