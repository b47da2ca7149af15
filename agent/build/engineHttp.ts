/**
 * Plain HTTP requests to the Docker Engine at the address dockerode was given (a unix socket, TCP with or
 * without TLS, or ssh:// through `docker system dial-stdio` on the remote host, as the docker CLI does):
 * the session's upgrade and the session build need requests dockerode does not make.
 */
import http from 'node:http';
import https from 'node:https';
import type Docker from 'dockerode';
import { SshDialAgent, type SshTarget } from '../engine/sshDial';

export interface EngineAddress {
  socketPath?: string;
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** An engine over SSH: where the user's ssh logs in (and the environment it runs with). */
  ssh?: { target: SshTarget; env: NodeJS.ProcessEnv };
}

/** docker-modem may hold the default socket as a function that finds it (the user's rootless one, or the system's). */
export async function engineAddress(docker: Docker): Promise<EngineAddress> {
  const m = docker.modem as unknown as Omit<EngineAddress, 'socketPath'> & { protocol?: string; socketPath?: string | (() => Promise<string> | string) };
  const socketPath = typeof m.socketPath === 'function' ? await m.socketPath() : m.socketPath;
  const agent = (docker.modem as unknown as { agent?: unknown }).agent;
  if (agent instanceof SshDialAgent) return { ssh: { target: agent.ssh, env: agent.env } };
  return {
    socketPath, host: m.host, port: m.port,
    protocol: m.protocol === 'https' ? 'https' : 'http', ca: m.ca, cert: m.cert, key: m.key,
  };
}

/** A request to the engine on a connection of its own (never pooled: the session's is taken over by HTTP/2). */
export function engineRequest(addr: EngineAddress, opts: { method: string; path: string; headers?: http.OutgoingHttpHeaders }): http.ClientRequest {
  const common = { method: opts.method, path: opts.path, headers: opts.headers, agent: false as const };
  if (addr.socketPath) return http.request({ ...common, socketPath: addr.socketPath });
  // A connection (an ssh login) of its own, closed with the request: the session's is held for the build's length.
  if (addr.ssh) return http.request({ ...common, agent: new SshDialAgent(addr.ssh.target, addr.ssh.env, { keepAlive: false }), host: 'docker' });
  if (addr.protocol === 'https') return https.request({ ...common, host: addr.host, port: addr.port, ca: addr.ca, cert: addr.cert, key: addr.key });
  return http.request({ ...common, host: addr.host, port: addr.port });
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
