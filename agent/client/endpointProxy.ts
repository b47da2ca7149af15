/**
 * A local address for an endpoint, for a browser: `http://127.0.0.1:PORT/X` is forwarded to the agent's
 * `/e/NAME/X` with the tenant token added, so a page of an endpoint that needs the token opens in a browser
 * (which cannot set the header) as it would at `/`. Bodies stream both ways and WebSocket upgrades pass
 * through. The protocol has no endpoint tunnel over the agent's WebSocket: this goes to the endpoint's own
 * HTTP(S) address, which the agent serves on the WebSocket's port anyway. It listens on 127.0.0.1 only.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TunnelAuth } from './openTunnel';

export interface EndpointProxy {
  /** `http://127.0.0.1:PORT`: the endpoint's `/` is here. */
  url: string;
  close(): Promise<void>;
}

/** Headers a proxy does not pass on (RFC 9110 §7.6.1), plus the caller's own Authorization: the token replaces it. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'authorization', 'host']);

function forwardHeaders(h: http.IncomingHttpHeaders, token: string): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (!HOP.has(k) && v !== undefined) out[k] = v;
  out.authorization = `Bearer ${token}`;
  return out;
}

/** `agentUrl`: the agent's ws(s):// address; `name`: the endpoint. */
export async function openEndpointProxy(agentUrl: string, auth: TunnelAuth, name: string, port = 0): Promise<EndpointProxy> {
  const base = new URL(agentUrl.replace(/^ws/, 'http'));
  const lib = base.protocol === 'https:' ? https : http;
  const agent = new lib.Agent({ keepAlive: true, ...(auth.ca ? { ca: auth.ca } : {}) });
  const target = (url: string | undefined) => `/e/${name}/${(url ?? '/').replace(/^\/+/, '')}`;
  const options = (req: http.IncomingMessage, headers: http.OutgoingHttpHeaders): http.RequestOptions => ({
    protocol: base.protocol, hostname: base.hostname, port: base.port, method: req.method, path: target(req.url), headers, agent,
  });
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const up = lib.request(options(req, forwardHeaders(req.headers, auth.token)), (r) => {
      res.writeHead(r.statusCode ?? 502, r.statusMessage, r.headers);
      r.pipe(res);
    });
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`cannot reach the agent: ${err.message}\n`);
    });
    req.pipe(up);
  });
  server.on('upgrade', (req, socket: Socket, head) => {
    const headers = forwardHeaders(req.headers, auth.token);
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade;
    const up = lib.request({ ...options(req, headers), agent: false, ...(auth.ca ? { ca: auth.ca } : {}) });
    up.on('upgrade', (r, upSocket, upHead) => {
      const lines = [`HTTP/1.1 ${r.statusCode} ${r.statusMessage}`];
      for (let i = 0; i < r.rawHeaders.length; i += 2) lines.push(`${r.rawHeaders[i]}: ${r.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upHead.length) socket.write(upHead);
      if (head.length) upSocket.write(head);
      upSocket.pipe(socket).pipe(upSocket);
      upSocket.on('error', () => socket.destroy());
      socket.on('error', () => upSocket.destroy());
    });
    // Refused before the upgrade (401, 404, 503): the agent's answer, as it gave it.
    up.on('response', (r) => {
      socket.write(`HTTP/1.1 ${r.statusCode} ${r.statusMessage}\r\nconnection: close\r\n\r\n`);
      r.pipe(socket);
    });
    up.on('error', () => socket.destroy());
    up.end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      agent.destroy();
      server.close(() => resolve());
    }),
  };
}
