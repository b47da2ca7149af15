/**
 * One BuildKit build through the Engine API: a session of the agent's own is opened first, then
 * `/build?version=2&session=…`. A context in the content store is served over the session (remote
 * `client-session`: the engine keeps its copy and asks only for changed files); a tar context is the body.
 * The stream's `moby.buildkit.trace` lines become steps and build output. A cancelled build is cancelled at
 * the engine (`/build/cancel`) and its session closed, so nothing keeps running.
 */
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import path from 'node:path';
import type http from 'node:http';
import { BuildError, LABELS, type BuildRequest, type BuildResult } from '../engine/engine';
import { BuildSession, type SessionServices } from './buildSession';
import { engineRequest, readErrorBody, type EngineAddress } from './engineHttp';
import { explainRegistryError, type RegistryAuth } from './registryAuth';
import { syncEntries } from './syncEntries';
import { TraceProgress } from './traceProgress';
import { TransferProgress } from './transferProgress';

export interface BuildKitOptions {
  /** The engine's API version (from `/_ping`), for the versioned paths. */
  apiVersion: string;
  /** Told what each DiffCopy sent (for the agent's log; tests count bytes with it). */
  onSent?: (source: string, stats: { files: number; bytes: number }) => void;
  /** Credentials for private base images, asked for by the session's Auth service. */
  registryAuth?: RegistryAuth;
}

export async function buildWithBuildKit(addr: EngineAddress, req: BuildRequest, opts: BuildKitOptions): Promise<BuildResult> {
  const signal = req.signal;
  signal?.throwIfAborted();
  const stored = typeof req.contextTar === 'function' ? req.contextTar.stored : undefined;
  const dockerfileDir = path.posix.dirname(req.dockerfile);
  const services: SessionServices = {
    source: (dirName, filter) => {
      if (!stored) return undefined;
      if (dirName === 'context') return { entries: syncEntries(stored.entries, '', filter), files: stored.files };
      if (dirName === 'dockerfile') return { entries: syncEntries(stored.entries, dockerfileDir === '.' ? '' : dockerfileDir, filter), files: stored.files };
      return undefined;
    },
    secret: (id) => req.secrets?.get(id),
    credentials: (host) => opts.registryAuth?.credentials(host),
    onSent: opts.onSent,
  };
  // A stored context is keyed so the engine keeps its copy; a tar body is sent whole anyway.
  const sharedKey = stored?.key ?? randomBytes(16).toString('hex');
  const session = new BuildSession(addr, sharedKey, services);
  const buildId = `bytenite-${randomBytes(12).toString('hex')}`;
  const v = `/v${opts.apiVersion}`;
  let cancelled = false;
  let request: http.ClientRequest | undefined;
  const onAbort = () => {
    cancelled = true;
    // The engine stops the solve on /build/cancel; closing the session ends any transfer still running.
    const c = engineRequest(addr, { method: 'POST', path: `${v}/build/cancel?id=${encodeURIComponent(buildId)}` });
    c.on('response', (res) => res.resume());
    c.on('error', () => {});
    // An engine that does not answer the cancel still loses the build's connection, which also stops it.
    c.setTimeout(5000, () => c.destroy());
    c.end();
    c.on('close', () => {
      session.close();
      request?.destroy();
    });
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  // The context files the engine pulls from the store, as upload progress (a tar body has its own).
  const transfer = stored && req.onTransfer ? new TransferProgress(() => session.transfer('context'), req.onTransfer) : undefined;
  try {
    await session.open();
    transfer?.start();
    if (cancelled) throw signal!.reason;
    const q = new URLSearchParams({
      version: '2',
      session: session.id,
      buildid: buildId,
      t: `bytenite-ctx:${req.digest.slice(0, 32)}`,
      dockerfile: stored ? path.posix.basename(req.dockerfile) : req.dockerfile,
      buildargs: JSON.stringify(req.buildArgs),
      // The agent's id too: two agents on one engine each remove only their own images (agent/images/).
      labels: JSON.stringify({ [LABELS.managed]: '1', [LABELS.digest]: req.digest, ...(req.agentId ? { [LABELS.agent]: req.agentId } : {}) }),
      rm: '1',
      forcerm: '1',
    });
    if (stored) q.set('remote', 'client-session');
    if (req.target) q.set('target', req.target);
    if (req.noCache) q.set('nocache', '1');
    if (req.pull) q.set('pull', '1');
    const progress = new TraceProgress(req.onStep, req.onLog);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      request = engineRequest(addr, {
        method: 'POST', path: `${v}/build?${q}`,
        headers: stored ? { 'Content-Type': 'application/x-tar', 'Content-Length': '0' } : { 'Content-Type': 'application/x-tar' },
      });
      request.on('response', resolve);
      request.on('error', reject);
      if (stored) request.end();
      else {
        const body = typeof req.contextTar === 'string' ? createReadStream(req.contextTar) : (req.contextTar as () => NodeJS.ReadableStream)();
        (body as NodeJS.ReadableStream & { on(e: 'error', f: (err: Error) => void): void }).on('error', (err) => request!.destroy(err));
        body.pipe(request);
      }
    });
    if (res.statusCode !== 200) {
      const message = await readErrorBody(res);
      if ((res.statusCode ?? 500) < 500) throw new BuildError(explainRegistryError(message, opts.registryAuth, req.tenant) ?? message);
      throw new Error(`the engine could not build: ${message}`);
    }
    await readJsonLines(res, (item) => progress.apply(item));
    if (cancelled) throw signal!.reason;
    if (progress.error) throw new BuildError(explainRegistryError(progress.error, opts.registryAuth, req.tenant) ?? progress.error);
    if (!progress.imageId) throw new BuildError('the engine ended the build without an image id (see the build log above)');
    transfer?.tick(true);
    return {
      imageId: progress.imageId, steps: progress.stepCount, cachedSteps: progress.cachedSteps, builder: 'buildkit',
      ...(stored ? { sent: { ...session.sent } } : {}),
    };
  } catch (err) {
    if (cancelled && signal) throw signal.reason;
    // The engine reports a transfer the agent broke off in its own words ("rpc error: …"); the cause is the agent's.
    throw session.sourceError ?? err;
  } finally {
    transfer?.stop();
    signal?.removeEventListener('abort', onAbort);
    session.close();
  }
}

/** The build's stream: one JSON object per line. */
async function readJsonLines(res: http.IncomingMessage, each: (item: Record<string, never>) => void): Promise<void> {
  let rest = '';
  const text = new StringDecoder('utf8'); // a chunk may end inside a character
  const take = (line: string) => {
    const t = line.trim();
    if (!t) return;
    let item: unknown;
    try {
      item = JSON.parse(t);
    } catch {
      throw new Error(`the engine's build stream held a line that is not JSON: ${t.slice(0, 200)}`);
    }
    if (item && typeof item === 'object') each(item as Record<string, never>);
  };
  for await (const chunk of res as AsyncIterable<Buffer>) {
    rest += text.write(chunk);
    const lines = rest.split('\n');
    rest = lines.pop()!;
    for (const l of lines) take(l);
  }
  take(rest + text.end());
}
