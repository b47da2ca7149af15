// The agent's BuildKit session against a stand-in engine: an HTTP server that answers the /session upgrade
// and then speaks HTTP/2 as the client, as the engine does. Checks what the engine relies on: one header line
// per exposed method, the health check SERVING, NOT_FOUND for an unknown secret, a known one's value,
// UNIMPLEMENTED for an unknown method, anonymous credentials; and which builder /_ping leads to.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { BuildSession, METHODS } from '../../agent/build/buildSession';
import { chooseBuilder } from '../../agent/build/builderChoice';
import { GrpcDeframer, frame } from '../../agent/build/grpcFraming';
import {
  CredentialsRequestCodec, CredentialsResponseCodec, GetSecretRequestCodec, GetSecretResponseCodec, HealthCheckRequestCodec,
  HealthCheckResponseCodec, SERVING,
} from '../../agent/build/protos';

const servers: http.Server[] = [];
after(() => servers.forEach((s) => s.close()));
let n = 0;

/** A unix-socket HTTP server; `upgrade` gets the session request and the raw socket. */
async function fakeEngine(opts: {
  ping?: Record<string, string>;
  upgrade?: (req: http.IncomingMessage, socket: Socket) => void;
}): Promise<string> {
  const socketPath = path.join(os.tmpdir(), `bytenite-fake-engine-${process.pid}-${n++}.sock`);
  const server = http.createServer((req, res) => {
    if (req.url === '/_ping') {
      res.writeHead(200, opts.ping ?? {});
      return res.end('OK');
    }
    res.writeHead(404).end();
  });
  server.on('upgrade', (req, socket) => opts.upgrade?.(req, socket as Socket));
  servers.push(server);
  await new Promise<void>((r) => server.listen(socketPath, r));
  return socketPath;
}

/** One unary call from the "engine" side; returns the status and the decoded reply bytes. */
function call(client: http2.ClientHttp2Session, method: string, body: Buffer): Promise<{ status: string; message?: Buffer; grpcMessage?: string }> {
  return new Promise((resolve, reject) => {
    const s = client.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
    const d = new GrpcDeframer();
    const msgs: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    s.on('response', (h) => (headers = h));
    s.on('data', (c: Buffer) => msgs.push(...d.push(c)));
    s.on('trailers', (t) => (headers = { ...headers, ...t }));
    s.on('end', () => resolve({ status: String(headers['grpc-status']), message: msgs[0], grpcMessage: headers['grpc-message'] as string | undefined }));
    s.on('error', reject);
    s.end(frame(body));
  });
}

test('the session: one header per method, health SERVING, secrets by id, NOT_FOUND, UNIMPLEMENTED, anonymous auth', async () => {
  let seen!: http.IncomingMessage;
  let client!: http2.ClientHttp2Session;
  const sessions: BuildSession[] = [];
  const connected = new Promise<void>((resolve) => {
    void fakeEngine({
      upgrade: (req, socket) => {
        seen = req;
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
        // The engine is the HTTP/2 client on the upgraded connection.
        client = http2.connect('http://engine', { createConnection: () => socket });
        client.on('error', () => {});
        resolve();
      },
    }).then((socketPath) => {
      const session = new BuildSession({ socketPath }, 'key-1', {
        source: () => undefined,
        secret: (id) => (id === 'tok' ? Buffer.from('value-1') : undefined),
      });
      void session.open();
      sessions.push(session);
    });
  });
  await connected;
  try {
    const raw = seen.rawHeaders;
    const methods = raw.filter((_v, i) => i % 2 === 0 && /^x-docker-expose-session-grpc-method$/i.test(raw[i])).length;
    assert.equal(methods, Object.keys(METHODS).length, 'one header line per method');
    assert.equal(seen.headers['x-docker-expose-session-sharedkey'], 'key-1');
    assert.equal(seen.headers['content-length'], '0');
    assert.equal(seen.headers['transfer-encoding'], undefined, 'not chunked');

    const health = await call(client, METHODS.health, HealthCheckRequestCodec.encode({}));
    assert.equal(health.status, '0');
    assert.equal(HealthCheckResponseCodec.decode(health.message!).status, SERVING);

    const known = await call(client, METHODS.secret, GetSecretRequestCodec.encode({ ID: 'tok' }));
    assert.equal(known.status, '0');
    assert.equal(Buffer.from(GetSecretResponseCodec.decode(known.message!).data).toString(), 'value-1');
    const unknown = await call(client, METHODS.secret, GetSecretRequestCodec.encode({ ID: 'nope' }));
    assert.equal(unknown.status, '5');

    const auth = await call(client, METHODS.credentials, CredentialsRequestCodec.encode({ Host: 'registry.example' }));
    assert.equal(auth.status, '0');
    assert.deepEqual(CredentialsResponseCodec.decode(auth.message!), {});

    const other = await call(client, '/moby.sshforward.v1.SSH/ForwardAgent', Buffer.alloc(0));
    assert.equal(other.status, '12');

    const noSource = await call(client, METHODS.diffCopy, Buffer.alloc(0));
    assert.equal(noSource.status, '5', 'a local source the build does not have');
  } finally {
    sessions.forEach((s) => s.close());
    client.destroy();
  }
});

test('a session the engine refuses fails with the engine\'s words', async () => {
  const socketPath = await fakeEngine({
    upgrade: (_req, socket) => {
      socket.write('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{"message":"session nope"}\n');
      socket.end();
    },
  });
  const session = new BuildSession({ socketPath }, 'k', { source: () => undefined, secret: () => undefined });
  await assert.rejects(session.open(), /the engine refused a build session: session nope/);
});

test('the builder /_ping leads to', async () => {
  const choice = async (ping: Record<string, string>, setting: 'auto' | 'legacy' | 'buildkit' = 'auto') =>
    (await chooseBuilder({ socketPath: await fakeEngine({ ping }) }, setting)).builder;
  assert.equal(await choice({ 'Api-Version': '1.43', 'Builder-Version': '2', Ostype: 'linux' }), 'buildkit');
  assert.equal(await choice({ 'Api-Version': '1.41', Ostype: 'linux' }), 'buildkit', '20.10 states no preference');
  assert.equal(await choice({ 'Api-Version': '1.41', 'Builder-Version': '1', Ostype: 'linux' }), 'legacy');
  assert.equal(await choice({ 'Api-Version': '1.38', Ostype: 'linux' }), 'legacy');
  assert.equal(await choice({ 'Api-Version': '1.41', Ostype: 'windows' }), 'legacy');
  assert.equal(await choice({ 'Api-Version': '1.43', 'Builder-Version': '2' }, 'legacy'), 'legacy');
  await assert.rejects(choice({ 'Api-Version': '1.38' }, 'buildkit'), /needs an engine with API 1\.39/);
  // Podman: an empty Builder-Version and Libpod-Api-Version; its /session is 404.
  const podman = { 'Api-Version': '1.41', 'Builder-Version': '', 'Libpod-Api-Version': '4.3.1' };
  assert.equal(await choice(podman), 'legacy');
  await assert.rejects(choice(podman, 'buildkit'), /cannot work on Podman/);
  assert.equal(await choice({ 'Api-Version': '1.43', 'Builder-Version': '1.5', Ostype: 'linux' }), 'legacy', 'only 2 means BuildKit');
});
