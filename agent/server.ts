/**
 * The agent's network face: an HTTP server whose WebSocket upgrade is authenticated before the socket
 * opens (wrong or missing token: 401), with a ping/pong heartbeat that drops dead peers.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer, WebSocket } from 'ws';
import { MAX_FRAME } from './protocol';
import { bearerToken, DEFAULT_TENANT, tenantOf } from './auth/tokens';
import { AuthLimiter, AuthLimitOptions, DEFAULT_AUTH_LIMIT } from './auth/authLimiter';
import { Engine } from './engine/engine';
import type { BuilderSetting } from './build/builderChoice';
import { DockerEngine } from './engine/dockerEngine';
import { RegistryAuth, type TenantRegistryAuth } from './build/registryAuth';
import { findEngine } from './engine/engineHost';
import { RunManager } from './runs/runManager';
import { RunJournal, DEFAULT_JOURNAL, JournalOptions } from './store/runJournal';
import { claimIdentity } from './store/agentIdentity';
import { BlobStore, DEFAULT_STORE_BYTES } from './store/blobStore';
import { Session } from './session';
import { DEFAULT_OUTPUTS_RETENTION_MS, defaultOutputsBudget } from './outputs/outputBudget';
import { OutputStore } from './outputs/outputStore';
import { storageUse } from './outputs/storageUse';
import type { StorageUse } from './protocol';
import { createLogger, Logger } from './log';
import { buildCatalog, readHost } from './hardware/catalog';
import { loadPricing } from './cost/pricing';
import { ImageKeeper } from './images/imageKeeper';
import { isTunnelRequest, openTunnel } from './tunnel/tunnelServer';
import { isExecRequest, openExec } from './interactive/execServer';
import { isStdinRequest, openStdin } from './interactive/stdinServer';
import { Endpoints } from './endpoints/endpoints';
import { Volumes } from './volumes/volumes';
import { Schedules } from './schedules/scheduler';
import { admitRun } from './runs/admitRun';
import { isEndpointRequest, routeRequest, routeUpgrade, type RouterDeps } from './endpoints/router';

export interface AgentOptions {
  host: string;
  port: number;
  /** The one token of the default tenant; `tokens` replaces it where there are several tenants. */
  token?: string;
  /** Token to tenant name (see agent/auth/tokens.ts); each tenant sees and touches only its own runs. */
  tokens?: ReadonlyMap<string, string>;
  /** Serve `wss://` with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** How fast failed authentication from one address is allowed (default: 10 in a burst, then one per 2 s). */
  authLimit?: AuthLimitOptions;
  dataDir: string;
  engine?: Engine;
  /** A JSON file that overrides the default prices (see agent/cost/prices.json). */
  pricesFile?: string;
  log?: Logger;
  stopGraceSeconds?: number;
  /** How long an interactive run waits for a client on its stdin (again) before it is stopped (default 60 s). */
  interactiveGraceMs?: number;
  maxContextBytes?: number;
  /** Bound of the store of context file contents (default 2 GiB); least recently used contents go first. */
  contextStoreBytes?: number;
  pidsLimit?: number;
  /** Give containers a network (default true); false runs them with none. */
  network?: boolean;
  heartbeatMs?: number;
  /** Size cap and rotation of the run journal (see agent/store/runJournal.ts). */
  journal?: Partial<JournalOptions>;
  /** Most containers the Docker engine keeps started ahead of time for hot starts (default 4; 0: none). */
  hotPool?: number;
  /** The engine's address (`bytenite agent --engine-host`), instead of finding it as the docker CLI does. */
  engineHost?: string;
  /** A Docker context to take the engine from (`bytenite agent --docker-context`). */
  dockerContext?: string;
  /** Bytes of run outputs the agent keeps until fetched (default: a quarter of the data folder's disk). */
  outputsBudgetBytes?: number;
  /** How long outputs are kept at most, fetched or not (default 7 days). */
  outputsRetentionMs?: number;
  /** Bytes of images kept (unique bytes, most recently used first; default from the engine's disk). */
  imageBudgetBytes?: number;
  /** Bytes of build cache kept (default from the engine's disk). */
  buildCacheBudgetBytes?: number;
  /** The builder for the Docker engine: `auto` (BuildKit when the engine has it), or forced. */
  builder?: BuilderSetting;
  /** Credentials for private base images (default: the agent user's own Docker config, for the default tenant). */
  registryAuth?: RegistryAuth | TenantRegistryAuth;
  /** Serve endpoints at /e/NAME/ (default true; the CLI's embedded agent, which ends with its command, does not). */
  endpoints?: boolean;
  /** Keep and fire schedules (default: as `endpoints`; the embedded agent would stop them with its command). */
  schedules?: boolean;
  /** How long an endpoint request is held waiting for an instance before 503 (default 60 s). */
  endpointHoldMs?: number;
  /** Bytes each tenant's named volumes may hold together (`--volume-quota`, default 20 GiB). */
  volumeQuotaBytes?: number;
  /** How often a run that writes a volume has its tenant's usage measured (default 10 s). */
  volumeCheckMs?: number;
}

export interface AgentServer {
  url: string;
  port: number;
  runs: RunManager;
  /** Disk used by outputs, the journal, the context store (and the engine's images), each against its budget. */
  storage(): Promise<StorageUse[]>;
  /** The engine in one line (kind, version, address, how it was found); undefined if it does not answer. */
  engineDescription(): Promise<string | undefined>;
  /** What keeps run containers apart on the network, in one line (absent with `network: false` or on an engine that says nothing). */
  isolation?: string;
  /** The image budget's keeper (absent for an engine without images of its own, e.g. Swarm): `usage()`, `collect()`. */
  images?: ImageKeeper;
  /** The endpoints it serves at /e/NAME/ (absent when `endpoints: false`). */
  endpoints?: Endpoints;
  /** Its schedules (absent when `schedules: false`). */
  schedules?: Schedules;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 7420;
const EMBEDDED_NO_ENDPOINTS = 'this agent serves no endpoints (the CLI\'s embedded agent stops with its command): ' +
  'start one with `bytenite agent` and pass --agent URL --token-file FILE';
const EMBEDDED_NO_SCHEDULES = 'this agent keeps no schedules (the CLI\'s embedded agent stops with its command): ' +
  'start one with `bytenite agent` and pass --agent URL --token-file FILE';
const CAPABILITIES = ['warm-start', 'outputs', 'cancel', 'attach', 'stats', 'cost', 'gpu', 'fan-out', 'context-store', 'outputs-resume', 'ports', 'exec', 'interactive', 'endpoints', 'volumes', 'schedules', 'raw-tunnel', 'local-context'];

export async function startAgent(opts: AgentOptions): Promise<AgentServer> {
  const log = opts.log ?? createLogger();
  // Found as the docker CLI finds it (DOCKER_HOST, Docker contexts, the default socket), unless named.
  const engine: Engine = opts.engine ?? new DockerEngine(undefined, {
    hotPool: opts.hotPool, target: findEngine({ engineHost: opts.engineHost, context: opts.dockerContext }), builder: opts.builder,
    registryAuth: opts.registryAuth ?? new RegistryAuth(),
    onSent: (source, sent) => log.info({ source, files: sent.files, bytes: sent.bytes }, 'build context sent to the engine'),
  });
  const pricing = await loadPricing(opts.pricesFile);
  // Before any run: what keeps run containers apart on the network (and off the metadata address).
  const isolation = (opts.network ?? true) ? await engine.isolation?.().catch((err) => `run isolation not set up: ${(err as Error).message}`) : undefined;
  // A cluster engine offers its nodes' hardware, not this machine's.
  const offered = engine.hardware ? await engine.hardware() : { host: await readHost() };
  const catalog = buildCatalog(offered.host, pricing.prices, pricing.reference);
  if (offered.nodes) catalog.nodes = offered.nodes;
  const identity = claimIdentity(opts.dataDir);
  if (!identity.owner) log.warn({ dataDir: opts.dataDir }, 'another agent holds this data folder: runs it left unfinished stay its own');
  const outputs = await OutputStore.open(path.join(opts.dataDir, 'outputs'), {
    budgetBytes: opts.outputsBudgetBytes ?? defaultOutputsBudget(opts.dataDir),
    retentionMs: opts.outputsRetentionMs ?? DEFAULT_OUTPUTS_RETENTION_MS,
  }, path.join(opts.dataDir, 'runs'));
  const journal = new RunJournal(path.join(opts.dataDir, 'runs'), { ...DEFAULT_JOURNAL, ...opts.journal });
  const images = engine.images
    ? await ImageKeeper.open(engine.images, {
      agentId: identity.id, dataDir: opts.dataDir, log,
      imageBudgetBytes: opts.imageBudgetBytes, buildCacheBudgetBytes: opts.buildCacheBudgetBytes,
    })
    : undefined;
  const volumes = new Volumes(engine.volumes, engine.name, {
    agentId: identity.id, dataDir: opts.dataDir, quotaBytes: opts.volumeQuotaBytes, checkMs: opts.volumeCheckMs,
    outputDir: '/bytenite/out', price: pricing.prices.volume, log,
  });
  const runs = new RunManager(engine, catalog, pricing, {
    dataDir: opts.dataDir,
    stopGraceSeconds: opts.stopGraceSeconds ?? 10,
    pidsLimit: opts.pidsLimit ?? 1024,
    network: opts.network ?? true,
    outputDir: '/bytenite/out',
    agentId: identity.id, owner: identity.owner,
    journal, outputs,
    images, volumes, interactiveGraceMs: opts.interactiveGraceMs,
  }, log);
  await runs.ensureDirs();
  // Past runs come back from the journal; those still running are followed again (see RunManager.restore).
  runs.restore();
  // After the runs: an endpoint adopts the instances (runs) the previous agent left running.
  const noEndpoints = opts.endpoints === false ? EMBEDDED_NO_ENDPOINTS : engine.noEndpoints;
  const endpoints = noEndpoints === undefined
    ? new Endpoints({ runs, engine, log, dataDir: opts.dataDir, holdMs: opts.endpointHoldMs, pricing, network: opts.network ?? true, pidsLimit: opts.pidsLimit ?? 1024 })
    : undefined;
  endpoints?.load();
  const maxContextBytes = opts.maxContextBytes ?? 2 * 1024 * 1024 * 1024;
  // After the runs too: a schedule follows the runs it had going, then catches up on the times it missed.
  // Its firings start runs as a client's run.create does (admitRun), so they are refused for the same reasons.
  const noSchedules = (opts.schedules ?? opts.endpoints) === false ? EMBEDDED_NO_SCHEDULES : undefined;
  const schedules = noSchedules === undefined
    ? new Schedules({ runs, engine, log, dataDir: opts.dataDir, start: (spec, tenant) => admitRun({ runs, engine, catalog, maxContextBytes, volumes }, spec, tenant) })
    : undefined;
  schedules?.load();
  // An endpoint at zero has no run, yet its image is needed by the next request; a schedule's by its next time.
  images?.neededBy(() => new Set([...runs.imagesInUse(), ...(endpoints?.imagesInUse() ?? []), ...(schedules?.imagesInUse() ?? [])]));
  images?.collectSoon();
  const blobs = await BlobStore.open(path.join(opts.dataDir, 'blobs'), opts.contextStoreBytes ?? DEFAULT_STORE_BYTES);
  const storage = () => storageUse({
    outputs, journal, blobs,
    more: images ? async () => {
      const u = await images.usage();
      return [
        { name: 'images' as const, usedBytes: u.imageBytes, budgetBytes: u.imageBudgetBytes, flag: '--image-budget', note: 'images this agent built, by the space they do not share; least recently used go first' },
        { name: 'build-cache' as const, usedBytes: u.buildCacheBytes, budgetBytes: u.buildCacheBudgetBytes, flag: '--build-cache-budget' },
      ];
    } : undefined,
  });
  const engineDescription = () => engine.describe?.().catch(() => undefined) ?? Promise.resolve(undefined);
  const deps = {
    runs, engine, catalog, log, capabilities: CAPABILITIES.filter((c) => (c !== 'endpoints' || endpoints) && (c !== 'volumes' || engine.volumes) && (c !== 'schedules' || schedules) &&
      !((c === 'interactive' || c === 'exec') && engine.noInteractive)), blobs, outputs, storage, engineDescription, endpoints, noEndpoints, volumes,
    schedules, noSchedules, maxContextBytes,
  };

  const tokens: ReadonlyMap<string, string> = opts.tokens ?? new Map(opts.token ? [[opts.token, DEFAULT_TENANT]] : []);
  if (tokens.size === 0) throw new Error('startAgent needs a token (or a token table)');
  const limiter = new AuthLimiter(opts.authLimit ?? DEFAULT_AUTH_LIMIT);
  const router: RouterDeps | undefined = endpoints ? { endpoints, tokens, limiter, log, tls: Boolean(opts.tls) } : undefined;

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (router && isEndpointRequest(req.url)) {
      routeRequest(req, res, router).catch((err) => {
        log.error({ err: (err as Error).message }, 'endpoint request failed');
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
      return;
    }
    // Plain HTTP answers only a health check; everything else is the WebSocket protocol.
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end('ByteNite agent: connect with a WebSocket client\n');
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest) : http.createServer(onRequest);
  // A TLS handshake that fails (a client that does not trust the certificate) is the client's problem to report.
  server.on('tlsClientError', (err) => log.info({ err: err.message }, 'TLS handshake failed'));
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false });
  const alive = new WeakMap<WebSocket, boolean>();

  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    // An endpoint checks its own callers (a public one takes anyone) before anything starts.
    if (router && isEndpointRequest(req.url)) {
      routeUpgrade(req, socket, head, router).catch((err) => {
        log.error({ err: (err as Error).message }, 'endpoint upgrade failed');
        socket.destroy();
      });
      return;
    }
    const address = req.socket.remoteAddress ?? 'unknown';
    const peer = `${address}:${req.socket.remotePort}`;
    const wait = limiter.retryAfter(address);
    if (wait > 0) {
      log.warn({ peer, retryAfterS: wait }, 'refused a connection: too many failed authentications from this address');
      socket.end(`HTTP/1.1 429 Too Many Requests\r\nRetry-After: ${wait}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\ntoo many failed authentications; retry in ${wait} s\n`);
      return;
    }
    const tenant = tenantOf(bearerToken(req.headers.authorization), tokens);
    if (tenant === undefined) {
      limiter.failed(address);
      log.warn({ peer }, 'refused a connection: missing or wrong token');
      socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nmissing or wrong token\n');
      return;
    }
    if (isStdinRequest(req.url)) return openStdin(req, socket, head, tenant, peer, { runs, log, wss });
    if (isExecRequest(req.url)) {
      openExec(req, socket, head, tenant, peer, { runs, log, wss }).catch((err) => {
        log.error({ peer, err: (err as Error).message }, 'exec failed to open');
        socket.destroy();
      });
      return;
    }
    if (isTunnelRequest(req.url)) {
      openTunnel(req, socket, head, tenant, peer, { runs, log, wss }).catch((err) => {
        log.error({ peer, err: (err as Error).message }, 'tunnel failed to open');
        socket.destroy();
      });
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new Session(ws, deps, peer, tenant);
      alive.set(ws, true);
      log.info({ peer, tenant }, 'client connected');
      ws.on('pong', () => alive.set(ws, true));
      ws.on('message', (data, isBinary) => session.onFrame(data as Buffer, isBinary));
      ws.on('error', (err) => log.warn({ peer, err: err.message }, 'connection error'));
      ws.on('close', (code) => {
        session.onClose();
        log.info({ peer, code }, 'client disconnected');
      });
    });
  });

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      // A socket opened elsewhere (exec, stdin, tunnel) is new to the heartbeat: it is pinged from now on,
      // not dropped unasked (that cut every exec and interactive session at its first heartbeat).
      if (!alive.has(ws)) ws.on('pong', () => alive.set(ws, true));
      else if (!alive.get(ws)) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, opts.heartbeatMs ?? 30_000);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `${opts.tls ? 'wss' : 'ws'}://${hostForUrl}:${port}`;
  log.info({ url, dataDir: path.resolve(opts.dataDir), engine: engine.name, cpus: catalog.host.cpus, gpus: catalog.host.gpus.length,
    ...(images?.described ?? { imageBudget: 'none: this engine keeps the images it builds' }),
    ...(isolation ? { isolation } : {}),
  }, 'agent listening');

  return {
    url, port, runs, storage, images, engineDescription, isolation, endpoints, schedules,
    async close() {
      clearInterval(heartbeat);
      await endpoints?.close();
      schedules?.close();
      await runs.shutdown();
      outputs.close();
      await images?.close();
      identity.release();
      for (const ws of wss.clients) ws.close(1001, 'agent shutting down');
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
    },
  };
}
