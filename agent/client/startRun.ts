/**
 * Starts a run from a folder on this machine: lists the context (after .dockerignore), lets the agent
 * decide warm or cold from its digest, uploads only when asked (only the contents the agent lacks, when it
 * keeps a content store), and resolves when the run's final event arrives. The CLI and the extension both
 * start runs through here.
 */
import os from 'node:os';
import path from 'node:path';
import { contextIdOf } from '../build/contextKey';
import { AgentClient, EventListener } from './agentClient';
import { listForBuild, packContext } from '../context/packContext';
import { describeLocalContext } from '../context/localIdentity';
import type { FinalEvent, HardwareRequest, RunEvent, RunSpecInput, VolumeMount } from '../protocol';
import { isFinal } from '../protocol/finalEvent';

export interface StartRunOptions {
  contextDir: string;
  /** Path of the Dockerfile, absolute or relative to the current folder. */
  dockerfile: string;
  hardware: HardwareRequest;
  buildArgs?: Record<string, string>;
  env?: Record<string, string>;
  secretEnv?: string[];
  command?: string[];
  /** `docker run --user`: name or uid, optionally `:group`. */
  user?: string;
  timeoutMs?: number;
  name?: string;
  /** Build up to this stage. */
  target?: string;
  /** Build cold, without the engine's cache. */
  noCache?: boolean;
  /** Build secrets by id, values base64 (held by the agent in memory for the build only). */
  buildSecrets?: Record<string, string>;
  /** Fan-out: this many tasks of the same image (default 1). */
  parallel?: number;
  /** Container ports to be told about (`port` events) once they accept connections: the `-p` ones. */
  ports?: number[];
  /** Build (or find the warm image) and end without a container: how `bytenite deploy` builds. */
  buildOnly?: boolean;
  /** Named volumes of the tenant to mount (`-v NAME:/path[:ro]`). */
  volumes?: VolumeMount[];
  /** An interactive run (`-i`, `-it`): its stdin is then opened with `AgentClient.stdin`. */
  interactive?: RunSpecInput['interactive'];
  /**
   * Let an agent on this machine read the context from its folder instead of being sent it (default true, or
   * false with BYTENITE_LOCAL_CONTEXT=0; it happens only where the agent offers it and sees the same folder,
   * else the upload runs as usual).
   */
  localContext?: boolean;
  onEvent: EventListener;
  /** Stamped (epoch ms) as the start goes: the context listed, the request sent, the agent's acceptance. */
  marks?: { contextAt?: number; requestAt?: number; acceptedAt?: number };
}

export interface StartedRun {
  runId: string;
  /** The final event (exited, failed or cancelled). Rejects if the connection drops first. */
  done: Promise<FinalEvent>;
  lastSeq(): number;
  /** The spec the run was created with (an endpoint is deployed with the spec of the run that built it). */
  spec: RunSpecInput;
  /** True when the agent read the context from its folder itself (nothing was uploaded). */
  localContext: boolean;
}

/**
 * `connection` may still be opening: the context is listed and hashed meanwhile (it needs no agent), which takes
 * the listing off a warm start's path where the connection is the slower of the two.
 */
export async function startRun(connection: AgentClient | Promise<AgentClient>, opts: StartRunOptions): Promise<StartedRun> {
  const contextDir = path.resolve(opts.contextDir);
  const dockerfile = path.relative(contextDir, path.resolve(opts.dockerfile)).split(path.sep).join('/');
  const buildArgs = opts.buildArgs ?? {};
  const listing = listForBuild(contextDir, dockerfile, buildArgs);
  listing.catch(() => {}); // awaited below, after the connection: a failure to connect is reported first
  const client = await connection;
  // An agent without a content store takes the whole tar, written before the run is created (it declares its size).
  const pack = client.hasContextStore ? await listing : await packContext(contextDir, dockerfile, buildArgs);
  const marks = opts.marks;
  if (marks) marks.contextAt = Date.now();
  let lastSeq = 0;
  let settle!: { resolve(e: FinalEvent): void; reject(e: Error): void };
  const done = new Promise<FinalEvent>((resolve, reject) => (settle = { resolve, reject }));
  const offClose = client.onClosed((reason) => settle.reject(new Error(`lost the agent before the run ended: ${reason}`)));
  try {
    const spec: RunSpecInput = {
        dockerfile, contextDigest: pack.digest, contextBytes: pack.bytes, buildArgs,
        env: opts.env ?? {}, secretEnv: opts.secretEnv ?? [], command: opts.command,
        hardware: opts.hardware, timeoutMs: opts.timeoutMs, name: opts.name, ...(opts.user ? { user: opts.user } : {}),
        contextId: contextIdOf(os.hostname(), userName(), contextDir),
        ...(opts.target ? { target: opts.target } : {}), ...(opts.noCache ? { noCache: true } : {}),
        ...(opts.buildSecrets ? { buildSecrets: opts.buildSecrets } : {}),
        ...(opts.parallel && opts.parallel > 1 ? { parallel: opts.parallel } : {}),
        ...(opts.ports?.length ? { ports: opts.ports } : {}),
        ...(opts.buildOnly ? { buildOnly: true } : {}),
        ...(opts.volumes?.length ? { volumes: opts.volumes } : {}),
        ...(opts.interactive ? { interactive: opts.interactive } : {}),
    };
    // Described after the listing, so a file changed since shows as a mismatch (and the upload path is taken).
    const wantLocal = opts.localContext ?? process.env.BYTENITE_LOCAL_CONTEXT !== '0';
    const local = 'entries' in pack && wantLocal && client.takesLocalContext
      ? () => describeLocalContext(contextDir, pack.entries, dockerfile) : undefined;
    if (marks) marks.requestAt = Date.now();
    const { runId, local: readLocally } = await client.createRun(
      spec,
      'tarPath' in pack ? pack.tarPath : pack,
      (seq: number, event: RunEvent, runId: string) => {
        lastSeq = seq;
        opts.onEvent(seq, event, runId);
        if (isFinal(event)) settle.resolve(event);
      },
      local,
      marks && (() => (marks.acceptedAt = Date.now())),
    );
    done.finally(offClose).catch(() => {});
    const { buildSecrets: _secrets, ...kept } = spec;
    return { runId, done, lastSeq: () => lastSeq, spec: kept, localContext: readLocally };
  } catch (err) {
    offClose();
    throw err;
  } finally {
    if ('cleanup' in pack) await pack.cleanup();
  }
}

/** The user's name, or their uid where the system has no name for it (a container's arbitrary user). */
function userName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}
