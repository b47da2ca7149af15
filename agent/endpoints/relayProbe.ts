/**
 * Readiness of a port the agent reaches only through a relay (`nc` in a gateway, agent/engine/swarmService.ts):
 * the relay stream exists as soon as the exec does, so "accepts a connection" is read from nc itself, which
 * exits at once, with its reason on stderr, when the connection is refused.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import net from 'node:net';

/** How long nc is given to fail before the connection counts as accepted. */
const REFUSAL_WINDOW_MS = 300;

export async function probeOverRelay(dial: (port: number) => Promise<Duplex>, port: number): Promise<boolean> {
  let s: Duplex;
  try {
    s = await dial(port);
  } catch {
    return false;
  }
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      s.removeAllListeners('close');
      s.destroy();
      resolve(true);
    }, REFUSAL_WINDOW_MS);
    const failed = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(false);
    };
    s.once('error', failed);
    s.once('close', failed);
    s.once('end', failed);
    s.resume();
  });
}

/** One GET of the ready path on a fresh connection (a socket, or a relay stream): 2xx within 2 s. */
export async function readyOverRelay(dial: (port: number) => Promise<Duplex>, port: number, readyPath: string): Promise<boolean> {
  let conn: Duplex;
  try {
    conn = await dial(port);
  } catch {
    return false;
  }
  return new Promise<boolean>((resolve) => {
    const req = http.request({ method: 'GET', path: readyPath, headers: { host: 'localhost', connection: 'close' }, createConnection: () => socketLike(conn) as net.Socket, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode! >= 200 && res.statusCode! < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** A relay stream (no network) given the few socket methods node's HTTP client calls on its connections. */
export function socketLike(s: Duplex): Duplex {
  if (s instanceof net.Socket) return s;
  const x = s as Duplex & Partial<net.Socket>;
  x.setKeepAlive ??= () => x as net.Socket;
  x.setNoDelay ??= () => x as net.Socket;
  x.setTimeout ??= () => x as net.Socket;
  x.ref ??= () => x as net.Socket;
  x.unref ??= () => x as net.Socket;
  return x;
}
