/**
 * Plain HTTP requests to the Docker Engine at the address dockerode was given (a unix socket, TCP with or
 * without TLS, or ssh:// through `docker system dial-stdio` on the remote host, as the docker CLI does):
 * the session's upgrade and the session build need requests dockerode does not make.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
// docker-modem's own SSH transport (ssh2, the user's agent and keys, the host key check dockerode was given):
// an http.Agent whose one connection is a `docker system dial-stdio` channel.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sshAgent = require('docker-modem/lib/ssh') as (opts: Record<string, unknown>) => http.Agent;

export interface EngineAddress {
  socketPath?: string;
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** An engine over SSH: where to log in, and ssh2's options (agent, key, host verifier) from dockerode's. */
  ssh?: { host: string; port: number; username?: string; options: Record<string, unknown> };
}

/** docker-modem may hold the default socket as a function that finds it (the user's rootless one, or the system's). */
export async function engineAddress(docker: Docker): Promise<EngineAddress> {
  const m = docker.modem as unknown as Omit<EngineAddress, 'socketPath'> & { protocol?: string; socketPath?: string | (() => Promise<string> | string) };
  const socketPath = typeof m.socketPath === 'function' ? await m.socketPath() : m.socketPath;
  if ((m.protocol as string | undefined) === 'ssh') {
    const sm = docker.modem as unknown as { host: string; port?: number; username?: string; sshOptions?: Record<string, unknown> };
    return { ssh: { host: sm.host, port: sm.port ?? 22, username: sm.username, options: sm.sshOptions ?? {} } };
  }
  return {
    socketPath, host: m.host, port: m.port,
    protocol: m.protocol === 'https' ? 'https' : 'http', ca: m.ca, cert: m.cert, key: m.key,
  };
}

/** A request to the engine on a connection of its own (never pooled: the session's is taken over by HTTP/2). */
export function engineRequest(addr: EngineAddress, opts: { method: string; path: string; headers?: http.OutgoingHttpHeaders }): http.ClientRequest {
  const common = { method: opts.method, path: opts.path, headers: opts.headers, agent: false as const };
  if (addr.socketPath) return http.request({ ...common, socketPath: addr.socketPath });
  if (addr.ssh) {
    // A new SSH connection per request, closed with it: the session's is held for the build's length.
    const agent = sshAgent({ ...addr.ssh.options, host: addr.ssh.host, port: addr.ssh.port, username: addr.ssh.username });
    const create = agent.createConnection.bind(agent) as (o: unknown, cb: (err: Error | null, s?: Duplex) => void) => void;
    // Node's HTTP client calls socket methods an SSH channel lacks (a request's timeout): they do nothing there.
    (agent as unknown as { createConnection: typeof create }).createConnection = (o, cb) => create(o, (err, s) => cb(err, s && socketLike(s)));
    return http.request({ ...common, agent, host: addr.ssh.host });
  }
  if (addr.protocol === 'https') return https.request({ ...common, host: addr.host, port: addr.port, ca: addr.ca, cert: addr.cert, key: addr.key });
  return http.request({ ...common, host: addr.host, port: addr.port });
}

function socketLike(s: Duplex): Duplex {
  const t = s as Duplex & Partial<Record<'setTimeout' | 'setNoDelay' | 'setKeepAlive' | 'ref' | 'unref', () => Duplex>>;
  for (const m of ['setTimeout', 'setNoDelay', 'setKeepAlive', 'ref', 'unref'] as const) t[m] ??= () => t;
  return t;
}

/** The whole body of an engine response, for its error message (`{"message": …}`), bounded. */
export async function readErrorBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    if (n < 64 * 1024) chunks.push(c);
    n += c.length;
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  try {
    const msg = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof msg === 'string' && msg) return msg;
  } catch { /* not JSON: the text itself */ }
  return text || `HTTP ${res.statusCode}`;
}
