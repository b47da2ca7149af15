/**
 * A BuildKit session of the agent's own: `POST /session` upgraded to h2c, on which the engine is the gRPC
 * client and the agent the server. It serves the health check (mandatory: without it the engine drops the
 * session within seconds), FileSync DiffCopy for the build's local sources, Secrets and Auth.
 */
import http2 from 'node:http2';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { engineRequest, readErrorBody, type EngineAddress } from './engineHttp';
import { GrpcDeframer, GrpcError, GrpcStatus, frame } from './grpcFraming';
import {
  CredentialsRequestCodec, CredentialsResponseCodec, GetSecretRequestCodec, GetSecretResponseCodec, HealthCheckRequestCodec,
  HealthCheckResponseCodec, PacketCodec, SERVING,
} from './protos';
import { FileSyncSender, type FileSource, type SendStats } from './fileSyncSender';
import type { SyncEntry, SyncFilter } from './syncEntries';

export const METHODS = {
  health: '/grpc.health.v1.Health/Check',
  diffCopy: '/moby.filesync.v1.FileSync/DiffCopy',
  secret: '/moby.buildkit.secrets.v1.Secrets/GetSecret',
  credentials: '/moby.filesync.v1.Auth/Credentials',
} as const;

/** How long the engine may take to answer the upgrade: past it, the engine is stuck and the build fails. */
const HANDSHAKE_MS = 15_000;

export interface SessionServices {
  /** The entries of a local source (`context`, `dockerfile`) after the engine's patterns, or undefined if unknown. */
  source(dirName: string, filter: SyncFilter): { entries: SyncEntry[]; files: FileSource } | undefined;
  /** A build secret's value, undefined when there is no secret of that id (the engine hears NOT_FOUND). */
  secret(id: string): Buffer | undefined;
  /** Registry credentials for a host; none means anonymous. */
  credentials?(host: string): { username: string; secret: string } | undefined | Promise<{ username: string; secret: string } | undefined>;
  /** Each finished DiffCopy: which source, and what it sent. */
  onSent?(dirName: string, stats: SendStats): void;
}

export class BuildSession {
  readonly id = randomBytes(16).toString('hex');
  /** Bytes of file contents and files sent over every DiffCopy of this session. */
  readonly sent: SendStats = { files: 0, bytes: 0 };
  private socket?: Socket;
  private server?: http2.Http2Server;
  private readonly h2: http2.ServerHttp2Session[] = [];
  /** DiffCopy calls in progress, with the source each serves. */
  private readonly senders = new Map<FileSyncSender, string>();
  /** Per source, what its finished DiffCopy calls sent and were asked for. */
  private readonly transferred = new Map<string, { bytesDone: number; bytesTotal: number }>();
  private closed = false;
  /** The first content the agent could not serve, and why (see FileSyncSender.sourceError). */
  sourceError?: Error;

  constructor(private readonly addr: EngineAddress, private readonly sharedKey: string, private readonly services: SessionServices) {}

  /** Opens the session; resolves once the engine has accepted the upgrade (the build may be posted then). */
  async open(): Promise<void> {
    const req = engineRequest(this.addr, {
      method: 'POST',
      path: '/session',
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'h2c',
        // Not chunked: the chunked terminator would reach the engine after the upgrade as a bad HTTP/2 frame.
        'Content-Length': '0',
        'X-Docker-Expose-Session-Uuid': this.id,
        'X-Docker-Expose-Session-Name': 'bytenite',
        'X-Docker-Expose-Session-Sharedkey': this.sharedKey,
        // One header line per method: a comma-joined line would be read as one method name.
        'X-Docker-Expose-Session-Grpc-Method': Object.values(METHODS),
      },
    });
    const socket = await new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`the engine did not open a build session within ${HANDSHAKE_MS / 1000} s`));
      }, HANDSHAKE_MS);
      req.on('upgrade', (res, sock: Socket, head: Buffer) => {
        clearTimeout(timer);
        // The engine's HTTP/2 preface may have come with the 101.
        if (head.length) sock.unshift(head);
        resolve(sock);
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        void readErrorBody(res).then((m) => reject(new Error(`the engine refused a build session: ${m}`)), reject);
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`could not open a build session with the engine: ${err.message}`));
      });
      req.end();
    });
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    socket.setTimeout?.(0); // an SSH channel has no timeout of its own
    socket.on('error', () => {}); // a session the engine drops ends with the build, which reports it
    const server = http2.createServer();
    this.server = server;
    server.on('session', (s) => {
      this.h2.push(s);
      s.on('error', () => {});
    });
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => this.route(stream, headers, rawHeaders));
    server.emit('connection', socket);
  }

  /** File content bytes of one source the engine asked for so far (`bytesTotal`), and how many were sent. */
  transfer(dirName: string): { bytesDone: number; bytesTotal: number } {
    const t = { ...(this.transferred.get(dirName) ?? { bytesDone: 0, bytesTotal: 0 }) };
    for (const [s, dir] of this.senders) {
      if (dir !== dirName) continue;
      t.bytesDone += s.stats.bytes;
      t.bytesTotal += s.requestedBytes;
    }
    return t;
  }

  /** Ends the session: the engine sees the connection go, any transfer still running stops. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.senders.keys()) s.abort(new Error('the build session closed'));
    // Not in this tick: Node sets a new HTTP/2 session up in a next tick, and feeds it the bytes already read
    // (the engine's preface); a session destroyed before that throws from inside Node (seen on Node 20).
    setImmediate(() => {
      for (const s of this.h2) s.destroy();
      this.socket?.destroy();
      this.server?.close();
    });
  }

  private route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: string[]): void {
    stream.on('error', () => {});
    const method = String(headers[':path'] ?? '');
    switch (method) {
      case METHODS.health:
        return this.unary(stream, (req) => {
          const { service } = HealthCheckRequestCodec.decode(req);
          if (service) throw new GrpcError(GrpcStatus.NOT_FOUND, `unknown service ${service}`);
          return HealthCheckResponseCodec.encode({ status: SERVING });
        });
      case METHODS.secret:
        return this.unary(stream, (req) => {
          const { ID } = GetSecretRequestCodec.decode(req);
          const value = ID ? this.services.secret(ID) : undefined;
          // The id is the user's own name for it; the value never goes into a message.
          if (!value) throw new GrpcError(GrpcStatus.NOT_FOUND, `secret ${ID ?? ''} not found`);
          return GetSecretResponseCodec.encode({ data: value });
        });
      case METHODS.credentials:
        return this.unary(stream, async (req) => {
          const { Host } = CredentialsRequestCodec.decode(req);
          const c = Host ? await this.services.credentials?.(Host) : undefined;
          return CredentialsResponseCodec.encode(c ? { Username: c.username, Secret: c.secret } : {});
        });
      case METHODS.diffCopy:
        return this.diffCopy(stream, metadata(raw));
      default:
        return endWith(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${method}`);
    }
  }

  /** A call with one request and one response. */
  private unary(stream: http2.ServerHttp2Stream, handle: (req: Buffer) => Buffer | Promise<Buffer>): void {
    const deframer = new GrpcDeframer();
    const messages: Buffer[] = [];
    stream.on('data', (c: Buffer) => {
      try {
        messages.push(...deframer.push(c));
      } catch (err) {
        endWith(stream, (err as GrpcError).code ?? GrpcStatus.INTERNAL, (err as Error).message);
      }
    });
    stream.on('end', async () => {
      if (stream.headersSent || stream.destroyed) return;
      if (messages.length !== 1) return endWith(stream, GrpcStatus.INVALID_ARGUMENT, `expected one request message, got ${messages.length}`);
      let reply: Buffer;
      try {
        reply = await handle(messages[0]);
      } catch (err) {
        const code = err instanceof GrpcError ? err.code : GrpcStatus.INVALID_ARGUMENT;
        return endWith(stream, code, (err as Error).message);
      }
      // The engine may have gone while a credential helper answered.
      if (stream.headersSent || stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame(reply));
    });
  }

  private diffCopy(stream: http2.ServerHttp2Stream, md: Map<string, string[]>): void {
    const dirName = md.get('dir-name')?.[0] ?? '';
    const found = this.services.source(dirName, {
      includePatterns: md.get('include-patterns'), excludePatterns: md.get('exclude-patterns'), followPaths: md.get('followpaths'),
    });
    if (!found) return endWith(stream, GrpcStatus.NOT_FOUND, `no local source named ${JSON.stringify(dirName)} in this build`);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    // Writers that find the stream full share one wait for its drain (or its end).
    let drained: Promise<void> | undefined;
    const write = async (buf: Buffer): Promise<void> => {
      if (drained) await drained;
      if (stream.destroyed || stream.writableEnded) throw new Error('the engine closed the file transfer');
      if (stream.write(buf)) return;
      drained ??= new Promise<void>((resolve, reject) => {
        const onDrain = () => { stream.off('close', onClose); drained = undefined; resolve(); };
        const onClose = () => { stream.off('drain', onDrain); drained = undefined; reject(new Error('the engine closed the file transfer')); };
        stream.once('drain', onDrain);
        stream.once('close', onClose);
      });
      await drained;
    };
    const sender = new FileSyncSender(found.entries, found.files, (p) => write(frame(PacketCodec.encode(p))));
    this.senders.set(sender, dirName);
    const deframer = new GrpcDeframer();
    stream.on('data', (c: Buffer) => {
      try {
        for (const m of deframer.push(c)) sender.receive(PacketCodec.decode(m));
      } catch (err) {
        sender.abort(err as Error);
      }
    });
    stream.on('close', () => sender.abort(new Error('the engine closed the file transfer')));
    let status: number = GrpcStatus.OK;
    let message = '';
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(status), ...(message ? { 'grpc-message': encodeURIComponent(message) } : {}) }));
    sender.start();
    sender.done.then(
      () => {
        this.sent.files += sender.stats.files;
        this.sent.bytes += sender.stats.bytes;
        this.services.onSent?.(dirName, sender.stats);
      },
      (err: Error) => {
        this.sourceError ??= sender.sourceError;
        status = GrpcStatus.UNKNOWN;
        message = err.message;
      },
    ).finally(() => {
      this.senders.delete(sender);
      const t = this.transferred.get(dirName) ?? { bytesDone: 0, bytesTotal: 0 };
      this.transferred.set(dirName, { bytesDone: t.bytesDone + sender.stats.bytes, bytesTotal: t.bytesTotal + sender.requestedBytes });
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    });
  }
}

/** Ends a call with a status and no message (a "trailers-only" answer when nothing was sent yet). */
function endWith(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed) return;
  const trailers = { 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) };
  if (!stream.headersSent) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...trailers }, { endStream: true });
    return;
  }
  stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/**
 * The call's metadata, from the raw header list: Node joins repeated headers into one "a, b" value, and the
 * engine sends one header per pattern (a pattern may hold a comma). `<key>-encoded: 1` marks URL-escaped values.
 */
function metadata(raw: string[]): Map<string, string[]> {
  const md = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (k.startsWith(':')) continue;
    md.set(k, [...(md.get(k) ?? []), raw[i + 1]]);
  }
  for (const [k, values] of md) {
    if (md.get(`${k}-encoded`)?.[0] === '1') md.set(k, values.map((v) => { try { return decodeURIComponent(v); } catch { return v; } }));
  }
  return md;
}
