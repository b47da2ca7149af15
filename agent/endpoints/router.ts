/**
 * `/e/NAME/…` on the agent's own listener: each request is checked (a tenant token unless the endpoint is
 * public; 401 before anything starts), given a slot on an instance by the endpoint's activator (held while
 * one starts), and streamed both ways to the instance's port with the prefix stripped and
 * X-Forwarded-Prefix, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto and X-Request-Id set. WebSocket
 * (and any other) upgrades pass through as bytes once the instance's answer to the upgrade comes back.
 * The agent's token never reaches the container. Each request ends in the endpoint's journal.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { bearerToken, tenantOf, type TokenTable } from '../auth/tokens';
import type { AuthLimiter } from '../auth/authLimiter';
import { Refusal, type Slot } from './activator';
import { notFound, type Endpoints } from './endpoints';
import type { RequestRecord } from '../protocol';

const PATH = /^\/e\/([a-z0-9][a-z0-9-]{0,62})(\/[^?]*)?(\?.*)?$/;

export function isEndpointRequest(url: string | undefined): boolean {
  return Boolean(url?.startsWith('/e/'));
}

export interface RouterDeps {
  endpoints: Endpoints;
  tokens: TokenTable;
  limiter: AuthLimiter;
  log: Logger;
  tls: boolean;
}

/** Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection and are not forwarded. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

interface Checked {
  name: string;
  rest: string;
  query: string;
  entry: NonNullable<ReturnType<Endpoints['route']>>;
  /** The Authorization header held an agent token: it is not forwarded. */
  agentToken: boolean;
}

/** Who may reach what: the answer to give instead, or the endpoint. */
function check(req: http.IncomingMessage, deps: RouterDeps): Checked | { status: number; message: string; headers?: Record<string, string> } {
  const m = PATH.exec(req.url ?? '');
  if (!m) return { status: 404, message: 'an endpoint is reached at /e/NAME/' };
  const [, name, rest = '/', query = ''] = m;
  const token = bearerToken(req.headers.authorization);
  const tenant = tenantOf(token, deps.tokens);
  const address = req.socket.remoteAddress ?? 'unknown';
  const entry = deps.endpoints.route(name, tenant);
  if (!entry) {
    // Without a valid token nothing but a public endpoint can be told apart from a missing one.
    if (tenant === undefined) {
      const wait = deps.limiter.retryAfter(address);
      if (token !== undefined && wait > 0) return { status: 429, message: `too many failed authentications; retry in ${wait} s`, headers: { 'retry-after': String(wait) } };
      if (token !== undefined) deps.limiter.failed(address);
      return { status: 401, message: 'missing or wrong token: send Authorization: Bearer <token>', headers: { 'www-authenticate': 'Bearer' } };
    }
    return { status: 404, message: notFound(name) };
  }
  return { name, rest, query, entry, agentToken: tenant !== undefined };
}

function forwardHeaders(req: http.IncomingMessage, c: Checked, requestId: string, tls: boolean, upgrade: boolean): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    if (HOP.has(k) && !(upgrade && (k === 'connection' || k === 'upgrade'))) continue;
    if (k === 'authorization' && c.agentToken) continue;
    if (k.startsWith('x-forwarded-') || k === 'x-request-id') continue;
    out[k] = v;
  }
  const prior = req.headers['x-forwarded-for'];
  const client = req.socket.remoteAddress ?? '';
  out['x-forwarded-for'] = prior ? `${prior}, ${client}` : client;
  out['x-forwarded-prefix'] = `/e/${c.name}`;
  out['x-forwarded-proto'] = tls ? 'https' : 'http';
  if (req.headers.host) out['x-forwarded-host'] = req.headers.host;
  out['x-request-id'] = requestId;
  return out;
}

/** The client's X-Request-Id when it is a plain token, else a new one. */
function requestIdOf(req: http.IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
}

type Draft = Omit<RequestRecord, 'seq'>;

function draft(req: http.IncomingMessage, rest: string, requestId: string): Draft {
  return { time: new Date().toISOString(), requestId, method: req.method ?? 'GET', path: rest, status: 0, bytesIn: 0, bytesOut: 0, heldMs: 0, totalMs: 0 };
}

type Entry = Checked['entry'];

/**
 * A free instance for the request (held until there is one), or undefined once the refusal (503 past the
 * hold limit, 499 when the client left) was answered with `answer` and journaled.
 */
async function acquireSlot(
  activator: Entry['activator'], journal: Entry['journal'], rec: Draft, arrived: number, signal: AbortSignal,
  answer: (status: number, message: string, headers: Record<string, string>) => void,
): Promise<Slot | undefined> {
  try {
    return await activator.acquire(signal);
  } catch (err) {
    const r = err instanceof Refusal ? err : new Refusal(500, (err as Error).message);
    if (r.status !== 499) answer(r.status, r.message, r.retryAfterS ? { 'retry-after': String(r.retryAfterS) } : {});
    journal.add({ ...rec, status: r.status === 499 ? 0 : r.status, heldMs: Date.now() - arrived, totalMs: Date.now() - arrived, error: r.message });
    return undefined;
  }
}

function plain(res: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(message + '\n');
}

/** Why a request an instance held could not be answered: the instance's end when it ended (waits briefly for it). */
async function failure(slot: Slot, err: Error): Promise<string> {
  await Promise.race([slot.instance.ended, new Promise((r) => setTimeout(r, 1000))]);
  return slot.instance.gone ? `the endpoint's instance ${slot.instance.runId} ended while handling the request: ${slot.instance.gone}` : `the endpoint's instance did not answer: ${err.message}`;
}

export async function routeRequest(req: http.IncomingMessage, res: http.ServerResponse, deps: RouterDeps): Promise<void> {
  const arrived = Date.now();
  const c = check(req, deps);
  if (!('entry' in c)) return plain(res, c.status, c.message, c.headers);
  const requestId = requestIdOf(req);
  const rec = draft(req, c.rest, requestId);
  res.setHeader('x-request-id', requestId);
  const { activator, journal } = c.entry;
  const left = new AbortController();
  // Only a client that leaves before its answer is done aborts: abort() makes a DOMException with its stack,
  // 3% of the agent's time under load when it was called at every response's close.
  res.on('close', () => { if (!res.writableFinished) left.abort(); });
  const slot = await acquireSlot(activator, journal, rec, arrived, left.signal, (st, m, h) => plain(res, st, m, h));
  if (!slot) return;
  const sent = Date.now();
  rec.heldMs = sent - arrived;
  rec.instance = slot.instance.runId;
  if (slot.wake) rec.wake = slot.wake;
  let done = false;
  const finish = (status: number, error?: string) => {
    if (done) return;
    done = true;
    slot.release();
    journal.add({ ...rec, status, totalMs: Date.now() - arrived, ...(error ? { error } : {}) });
  };
  const up = http.request({
    agent: slot.instance.agent, host: 'instance', port: activator.def.settings.port, method: req.method,
    path: c.rest + c.query, headers: forwardHeaders(req, c, requestId, deps.tls, false), setHost: false,
  });
  req.on('data', (chunk: Buffer) => (rec.bytesIn += chunk.length));
  req.pipe(up);
  up.on('response', (ures) => {
    rec.firstByteMs = Date.now() - arrived;
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(ures.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    headers['x-request-id'] = requestId;
    res.writeHead(ures.statusCode ?? 502, ures.statusMessage, headers);
    ures.on('data', (chunk: Buffer) => (rec.bytesOut += chunk.length));
    ures.pipe(res);
    ures.on('error', () => res.destroy());
    ures.on('aborted', () => res.destroy());
    res.on('finish', () => finish(ures.statusCode ?? 0));
  });
  up.on('error', (err) => {
    if (done) return;
    if (res.headersSent) {
      res.destroy();
      finish(0, err.message);
      return;
    }
    void failure(slot, err).then((why) => {
      plain(res, 502, why);
      finish(502, why);
    });
  });
  res.on('close', () => {
    if (!res.writableFinished) {
      up.destroy();
      finish(res.headersSent ? res.statusCode : 0, 'the client left before the response ended');
    }
  });
}

/** An upgrade (WebSocket) through an endpoint: the instance answers it, then bytes pass both ways until either side closes. */
export async function routeUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, deps: RouterDeps): Promise<void> {
  const arrived = Date.now();
  const c = check(req, deps);
  if (!('entry' in c)) return rawRefuse(socket, c.status, c.message, c.headers);
  const requestId = requestIdOf(req);
  const rec = draft(req, c.rest, requestId);
  const { activator, journal } = c.entry;
  const left = new AbortController();
  socket.on('close', () => left.abort());
  const slot = await acquireSlot(activator, journal, rec, arrived, left.signal, (st, m, h) => rawRefuse(socket, st, m, h));
  if (!slot) return;
  rec.heldMs = Date.now() - arrived;
  rec.instance = slot.instance.runId;
  if (slot.wake) rec.wake = slot.wake;
  let done = false;
  const finish = (error?: string) => {
    if (done) return;
    done = true;
    slot.release();
    journal.add({ ...rec, totalMs: Date.now() - arrived, ...(error ? { error } : {}) });
  };
  let conn: Duplex;
  try {
    if (!slot.instance.target) throw new Error(slot.instance.gone ?? 'the instance is not running');
    conn = await slot.instance.target.dial(activator.def.settings.port);
  } catch (err) {
    const why = await failure(slot, err as Error);
    rec.status = 502;
    rawRefuse(socket, 502, why);
    finish(why);
    return;
  }
  if (socket.destroyed) {
    conn.destroy();
    finish('the client left');
    return;
  }
  const headers = forwardHeaders(req, c, requestId, deps.tls, true);
  const lines = [`${req.method} ${c.rest}${c.query} HTTP/1.1`];
  for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
  conn.write(lines.join('\r\n') + '\r\n\r\n');
  if (head.length) conn.write(head);
  // The status of the instance's answer, read from its first line, for the journal.
  let first = '';
  const sniff = (chunk: Buffer) => {
    first += chunk.toString('latin1', 0, Math.min(chunk.length, 64));
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(first);
    if (m || first.length >= 64) {
      conn.off('data', sniff);
      rec.status = m ? Number(m[1]) : 0;
      rec.firstByteMs = Date.now() - arrived;
    }
  };
  conn.on('data', sniff);
  conn.on('data', (b: Buffer) => (rec.bytesOut += b.length));
  socket.on('data', (b: Buffer) => (rec.bytesIn += b.length));
  conn.pipe(socket);
  socket.pipe(conn);
  const close = () => {
    socket.destroy();
    conn.destroy();
    finish();
  };
  conn.on('close', close);
  socket.on('close', close);
  conn.on('error', close);
  socket.on('error', close);
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

function rawRefuse(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const body = message + '\n';
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ''}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`);
}
