/**
 * The cluster engine: a Docker Engine that is a Swarm manager. A run becomes a one-task Swarm service that
 * runs once (restart condition none, created detached), with reservations and limits from the hardware and
 * GPUs as generic resources; Swarm picks the node, and a task it cannot place yet is reported as queued
 * with Swarm's own reason. Images are built on the manager, pushed to the agent's registry and named by
 * digest, so every node runs the very image that was built.
 *
 * Logs come from the task log API of the manager (`GET /tasks/{id}/logs`), not from the task's container on
 * its node: it works for a task on any node with nothing but the manager's API, keeps stdout and stderr
 * apart (the same multiplexed frames as a container's log), and carries the frames in the order of the
 * container's log file on its node (checked: the same frames, the same order as `docker logs` there), with
 * the engine's timestamps, so the cursor of the single-machine engine works unchanged. Its follow stream
 * never ends when the task does, so the end is taken from the task's state and the tail is read once more
 * without follow, after the last frame already delivered.
 *
 * What only the node itself knows (CPU and memory stats, the OOM flag, exact start and finish times, the
 * output folder) is read from the task's container when the agent can reach that node's engine: always the
 * manager's own node, and any node given in `nodeEngines`. Elsewhere stats are not reported, OOM is not known
 * (an OOM kill shows as exit 137), times come from the task's states, and outputs stay on the node.
 */
import Docker from 'dockerode';
import type { Catalog } from '../protocol';
import {
  BuildRequest, BuildResult, ContainerHandlers, ContainerSpec, Engine, EngineHardware, EngineUnavailableError,
  ExitInfo, HardwareUnavailableError, LABELS, RunningContainer, containerLabels,
} from './engine';
import { DockerEngine } from './dockerEngine';
import { describeTarget, type EngineTarget } from './engineHost';
import type { RegistryAuth, TenantRegistryAuth } from '../build/registryAuth';
import { DockerLogReader, sinceParam } from './dockerLogStream';
import { followStats, openOutputs } from './containerIo';
import { isTimeCursor, type LogCursor, type TimeCursor } from '../store/runJournal';
import { TASK_CAP_DROP, gpuKind, nodeSize, refuse, schedulable, taskResources, type SwarmNode } from './swarmNodes';
import { FrameDeduper } from './frameDeduper';
import { SwarmVolumes, type VolumePlacement } from './swarmVolumes';
import { ENDPOINT_LABEL, SwarmServices } from './swarmService';

const REPO = 'bytenite-ctx';
/** Task states after which the task's container no longer runs. */
const TERMINAL = new Set(['complete', 'failed', 'shutdown', 'rejected', 'orphaned', 'remove']);
/** Task states before the container starts: the task waits for a node, an image or its start. */
const WAITING = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);
/** A node in one of these states no longer reports to the manager: its tasks' outcome is unknown. */
const LOST = new Set(['down', 'unknown', 'disconnected']);
/** How long the manager may fail to answer before a run is given up as lost with it. */
const MANAGER_GRACE_MS = 15_000;

export interface SwarmEngineOptions {
  /** The manager's engine (default: DOCKER_HOST or the local socket). */
  docker?: Docker;
  /** How the manager's engine was found (`--docker-context`, a context, DOCKER_HOST), for messages. */
  target?: EngineTarget;
  /** HOST:PORT of the registry the agent pushes to and every node pulls from. */
  registry: string;
  /** Engines of other nodes the agent can reach: stats, OOM flag and outputs of their tasks come from there. */
  nodeEngines?: Docker[];
  /** How often a task's state is read (ms). */
  pollMs?: number;
  /** Credentials for private base images, for the builds on the manager. */
  registryAuth?: RegistryAuth | TenantRegistryAuth;
}

interface Task {
  ID: string;
  NodeID?: string;
  DesiredState?: string;
  Status: {
    Timestamp: string; State: string; Message?: string; Err?: string;
    ContainerStatus?: { ContainerID?: string; ExitCode?: number };
  };
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

function messageOf(err: unknown): string {
  return (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SwarmEngine implements Engine {
  readonly name = 'swarm';
  /** Swarm places and queues tasks itself: the agent admits every run at once and reports Swarm's waiting. */
  readonly schedules = true;
  /** An endpoint is a replicated service the agent reaches through a gateway on the manager (swarmService.ts). */
  readonly endpointServices: SwarmServices;
  readonly noInteractive = 'the Swarm engine has no interactive runs nor exec: a service task\'s stdin and a command inside it are on ' +
    'another machine\'s engine, which the agent does not attach to; run -it on an agent on a Docker engine';
  private readonly docker: Docker;
  private readonly builder: DockerEngine;
  private readonly registry: string;
  private readonly pollMs: number;
  /** Node id to an engine the agent can reach on that node (filled on first use). */
  private nodeDockers?: Promise<Map<string, Docker>>;
  /** Tenants' named volumes, each on the node that made it (swarmVolumes.ts). */
  readonly volumes: SwarmVolumes;

  constructor(private readonly opts: SwarmEngineOptions) {
    this.docker = opts.docker ?? new Docker();
    this.builder = new DockerEngine(this.docker, { registryAuth: opts.registryAuth, target: opts.target });
    this.registry = opts.registry;
    this.pollMs = opts.pollMs ?? 250;
    this.volumes = new SwarmVolumes(this.docker, () => this.nodeDockerMap());
    this.endpointServices = new SwarmServices(this.docker, (image) => this.imageRef(image));
  }

  private where(): string {
    if (this.opts.target) return describeTarget(this.opts.target);
    const m = this.docker.modem as { socketPath?: string; host?: string; port?: number };
    return m.socketPath ? `unix://${m.socketPath}` : `${m.host}:${m.port}`;
  }

  async ping(): Promise<void> {
    await this.builder.ping();
    const info = (await this.docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };
    if (info.Swarm?.LocalNodeState !== 'active' || !info.Swarm.ControlAvailable) {
      throw new EngineUnavailableError(
        `the Docker Engine at ${this.where()} is not a Swarm manager (swarm state: ${info.Swarm?.LocalNodeState || 'inactive'}). ` +
          'Point DOCKER_HOST, a Docker context or --engine-host at a manager of the cluster, or start the agent without --engine swarm to run on this machine.',
      );
    }
  }

  /** The image built from this digest, if it is still on the manager and in the registry. */
  async findImage(digest: string): Promise<string | undefined> {
    const images = await this.docker.listImages({ filters: { label: [`${LABELS.digest}=${digest}`] } });
    const pushed = images.find((i) => (i.RepoDigests ?? []).some((d) => d.startsWith(`${this.registry}/${REPO}@`)));
    return pushed?.Id;
  }

  /** Builds on the manager (as the single-machine engine does), then pushes to the registry. */
  async build(req: BuildRequest): Promise<BuildResult> {
    const built = await this.builder.build(req);
    await this.push(built.imageId, req.digest);
    return built;
  }

  private async push(imageId: string, digest: string): Promise<string> {
    const tag = digest.slice(0, 32);
    await this.docker.getImage(imageId).tag({ repo: `${this.registry}/${REPO}`, tag });
    const stream = await this.docker.getImage(`${this.registry}/${REPO}:${tag}`).push({ authconfig: {} } as object);
    let failure: string | undefined;
    let pushed: string | undefined;
    await new Promise<void>((resolve, reject) =>
      this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()), (item: {
        error?: string; aux?: { Digest?: string };
      }) => {
        if (item.error) failure = item.error;
        if (item.aux?.Digest) pushed = item.aux.Digest;
      }),
    ).catch((err) => { failure ??= (err as Error).message; });
    if (failure || !pushed) {
      throw new EngineUnavailableError(
        `could not push the image to the registry ${this.registry}: ${failure ?? 'no digest came back'}. ` +
          'Check that the registry runs and that the manager\'s engine trusts it (--insecure-registry for plain HTTP).',
      );
    }
    return `${this.registry}/${REPO}@${pushed}`;
  }

  /** Pushes in progress by image: the tasks of a fan-out run start together and push the image once. */
  private readonly pushing = new Map<string, Promise<string>>();

  /** The registry reference, by digest, of an image on the manager; pushes it first if it never was. */
  private imageRef(image: string): Promise<string> {
    let ref = this.pushing.get(image);
    if (!ref) {
      ref = this.resolveRef(image).finally(() => this.pushing.delete(image));
      this.pushing.set(image, ref);
    }
    return ref;
  }

  private async resolveRef(image: string): Promise<string> {
    const info = await this.docker.getImage(image).inspect();
    const ref = (info.RepoDigests ?? []).find((d) => d.startsWith(`${this.registry}/${REPO}@`));
    if (ref) return ref;
    return this.push(info.Id, info.Config?.Labels?.[LABELS.digest] ?? info.Id.replace(/^sha256:/, ''));
  }

  async start(spec: ContainerSpec, handlers: ContainerHandlers): Promise<RunningContainer> {
    const ref = await this.imageRef(spec.image);
    const nodes = await this.nodes();
    const refusal = refuse(nodes, spec.hardware);
    if (refusal) throw new HardwareUnavailableError(refusal);
    // A volume is on one node: the task goes there (or, new, is recorded where Swarm put it once it runs).
    const placement = await this.volumes.place(spec);
    let serviceId: string | undefined;
    try {
      serviceId = (await this.docker.createService(this.serviceSpec(spec, ref, placement) as unknown as Docker.CreateServiceOptions)).id;
      const task = await this.untilStarted(serviceId, handlers, spec.signal);
      await placement.settle(task.NodeID);
      return await this.supervise(serviceId, task, spec.outputDir, handlers);
    } catch (err) {
      await placement.settle(undefined).catch(() => {});
      if (serviceId) await this.removeService(serviceId).catch(() => {});
      throw err;
    }
  }

  private serviceSpec(spec: ContainerSpec, image: string, placement: VolumePlacement): object {
    const hw = spec.hardware;
    const labels = containerLabels(spec);
    return {
      // A fan-out run is one service per task: each keeps its own task log, exit code and stop.
      Name: spec.task === undefined ? `bytenite-${spec.runId}` : `bytenite-${spec.runId}-t${spec.task}`,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: image,
          Args: spec.command,
          ...(spec.user ? { User: spec.user } : {}),
          Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
          Labels: labels,
          // An anonymous volume: the program can write there whatever its image holds, the folder outlives
          // the exit so outputs can be copied, and it goes with the container when the service is removed.
          Mounts: [{ Type: 'volume', Target: spec.outputDir }, ...this.volumes.mounts(spec.mounts)],
          CapabilityDrop: TASK_CAP_DROP,
          StopGracePeriod: 10e9,
        },
        Resources: taskResources(hw, spec.pidsLimit),
        RestartPolicy: { Condition: 'none', MaxAttempts: 0 },
        ...(placement.constraints.length ? { Placement: { Constraints: placement.constraints } } : {}),
        Networks: spec.network ? undefined : [{ Target: 'none' }],
      },
      Mode: { Replicated: { Replicas: 1 } },
    };
  }

  /** Waits until the service's task runs (or already ended); reports Swarm's reason while it waits. */
  private async untilStarted(serviceId: string, handlers: ContainerHandlers, signal?: AbortSignal): Promise<Task> {
    let lastReason: string | undefined;
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const task = await this.taskOf(serviceId);
      if (task) {
        const s = task.Status;
        if (s.State === 'running' || (TERMINAL.has(s.State) && s.ContainerStatus?.ContainerID)) return task;
        if (s.State === 'rejected' || (TERMINAL.has(s.State))) {
          const node = task.NodeID ? await this.nodeName(task.NodeID) : 'no node';
          throw new Error(`the Swarm could not start the task on ${node}: ${s.Err || s.Message || s.State}`);
        }
        if (s.State === 'pending' && s.Err && s.Err !== lastReason) {
          lastReason = s.Err;
          handlers.onQueued?.(`Swarm: ${s.Err}`);
        }
        if (task.NodeID && WAITING.has(s.State) && s.State !== 'pending') {
          const lost = await this.lostNode(task.NodeID);
          if (lost) throw new Error(`lost ${lost} before the task started; run it again`);
        }
      }
      await sleep(this.pollMs);
    }
  }

  private async taskOf(serviceId: string): Promise<Task | undefined> {
    const tasks = (await this.docker.listTasks({ filters: { service: [serviceId] } })) as Task[];
    // One replica with restart condition none: one task (newest first if Swarm ever made another).
    return tasks.sort((a, b) => Date.parse(b.Status.Timestamp) - Date.parse(a.Status.Timestamp))[0];
  }

  /** Follows a started task: its log, its stats where the node can be reached, its end. */
  private async supervise(serviceId: string, first: Task, outputDir: string, handlers: ContainerHandlers, cursor?: TimeCursor): Promise<RunningContainer> {
    const taskId = first.ID;
    const nodeId = first.NodeID ?? '';
    const containerId = first.Status.ContainerStatus?.ContainerID;
    const local = containerId ? (await this.nodeDockerMap()).get(nodeId) : undefined;
    const container = local && containerId ? local.getContainer(containerId) : undefined;
    const startedAt = new Date(first.Status.State === 'running' ? first.Status.Timestamp : Date.now());
    let last = cursor;
    const emit = (stream: 'stdout' | 'stderr', text: string, c: TimeCursor) => {
      last = c;
      handlers.onOutput(stream, text, c);
    };
    const task = this.docker.getTask(taskId) as unknown as { logs(o: object): Promise<NodeJS.ReadableStream | Buffer> };
    const logOpts = (after?: TimeCursor) => ({ stdout: true, stderr: true, timestamps: true, ...(after ? { since: sinceParam(after) } : {}) });
    const live = (await task.logs({ ...logOpts(cursor), follow: true })) as NodeJS.ReadableStream & { destroy(): void };
    const reader = new DockerLogReader(emit, cursor);
    // The live stream and the tail read at the end overlap, and a follow that starts while the task runs can
    // repeat frames: each stream's frames are kept once, by their (per stream, ordered) timestamps.
    const frames = new FrameDeduper();
    live.on('data', (c: Buffer) => reader.push(frames.filter(c)));
    live.on('error', () => {});
    const stopStats = container ? followStats(container, handlers) : () => {};

    const exited = (async (): Promise<ExitInfo> => {
      let end: Task | undefined;
      let failingSince: number | undefined;
      try {
        for (;;) {
          try {
            const t = await this.taskOf(serviceId);
            failingSince = undefined;
            if (t && TERMINAL.has(t.Status.State)) {
              end = t;
              break;
            }
            const lost = await this.lostNode(nodeId);
            if (lost) {
              throw new Error(
                `lost ${lost} while the task was running: the Swarm manager no longer hears from it, so the ` +
                  'task\'s outcome, its remaining logs and its outputs are unknown. Check that node, then run it again.',
              );
            }
          } catch (err) {
            if (statusOf(err) !== undefined || !isConnectionError(err)) throw err;
            failingSince ??= Date.now();
            if (Date.now() - failingSince > MANAGER_GRACE_MS) {
              throw new EngineUnavailableError(
                `lost the Swarm manager at ${this.where()} while the run was running (${messageOf(err)}). ` +
                  'Its outcome is unknown; check the manager, then run it again.',
              );
            }
          }
          await sleep(this.pollMs);
        }
        // The live stream does not end with the task: give it a moment, then read what it had not brought.
        await sleep(200);
        live.destroy();
        const tail = await task.logs(logOpts(last && { time: new Date(Date.parse(last.time) - 2000).toISOString(), count: 0 }));
        reader.push(frames.filter(Buffer.isBuffer(tail) ? tail : await readAll(tail)));
        reader.end();
      } finally {
        stopStats();
        live.destroy();
      }
      const s = end.Status;
      const lost = await this.lostNode(nodeId).catch(() => undefined);
      if (lost || s.ContainerStatus?.ExitCode === undefined) {
        throw new Error(
          `${lost ? `lost ${lost}` : `the task on ${await this.nodeName(nodeId)} ended without an exit code`} ` +
            `(task state ${s.State}${s.Err ? `: ${s.Err}` : ''}): the task's outcome, its remaining logs and its outputs are unknown. ` +
            'Check that node, then run it again.',
        );
      }
      const exitCode = s.ContainerStatus.ExitCode;
      const error = s.State === 'rejected' || (s.State === 'failed' && !s.Err?.startsWith('task: non-zero exit')) ? s.Err : undefined;
      if (container) {
        const info = await container.inspect().catch(() => undefined);
        if (info) {
          return {
            exitCode: info.State.ExitCode ?? exitCode, oomKilled: Boolean(info.State.OOMKilled),
            startedAt: new Date(info.State.StartedAt), finishedAt: new Date(info.State.FinishedAt),
            error: error || info.State.Error || undefined,
          };
        }
      }
      return { exitCode, oomKilled: false, startedAt, finishedAt: new Date(s.Timestamp), error };
    })();
    exited.catch(() => {});
    return {
      id: serviceId,
      startedAt,
      exited,
      stop: () => this.scaleToZero(serviceId),
      openOutputs: () => (container ? openOutputs(container, outputDir) : Promise.resolve(undefined)),
      remove: () => this.removeService(serviceId),
    };
  }

  /** Stops the task (SIGTERM, then SIGKILL after the service's grace period) and keeps its container for its outputs. */
  private async scaleToZero(serviceId: string): Promise<void> {
    try {
      const service = this.docker.getService(serviceId);
      const info = (await service.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
      await service.update({ ...info.Spec, version: info.Version.Index, Mode: { Replicated: { Replicas: 0 } } });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  private async removeService(serviceId: string): Promise<void> {
    await this.docker.getService(serviceId).remove().catch((err) => {
      if (statusOf(err) !== 404) throw err;
    });
  }

  async reattach(serviceId: string, outputDir: string, handlers: ContainerHandlers, cursor?: LogCursor): Promise<RunningContainer> {
    const task = await this.untilStarted(serviceId, handlers);
    // Task logs are read by timestamp; a cursor of another kind cannot come from this engine.
    return this.supervise(serviceId, task, outputDir, handlers, isTimeCursor(cursor) ? cursor : undefined);
  }

  async containerEnv(serviceId: string): Promise<Record<string, string>> {
    const info = (await this.docker.getService(serviceId).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Env?: string[] } } } };
    const env: Record<string, string> = {};
    for (const kv of info.Spec.TaskTemplate.ContainerSpec.Env ?? []) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return env;
  }

  async listOwn(agentId: string): Promise<Array<{ id: string; runId: string; running: boolean }>> {
    const services = (await this.docker.listServices({ filters: { label: [`${LABELS.agent}=${agentId}`] } })).filter(isRunService);
    return Promise.all(services.map(async (s) => {
      const task = await this.taskOf(s.ID!);
      return { id: s.ID!, runId: s.Spec?.Labels?.[LABELS.run] ?? '', running: Boolean(task && !TERMINAL.has(task.Status.State)) };
    }));
  }

  async removeLeftovers(agentId: string, keep: ReadonlySet<string>): Promise<number> {
    const services = (await this.docker.listServices({ filters: { label: [`${LABELS.agent}=${agentId}`] } })).filter(isRunService);
    let removed = 0;
    for (const s of services) {
      if (keep.has(s.Spec?.Labels?.[LABELS.run] ?? '')) continue;
      await this.removeService(s.ID!);
      removed++;
    }
    return removed;
  }

  /** The cluster as the catalog shows it: every node, and as `host` what one task can get on the largest. */
  async hardware(): Promise<EngineHardware> {
    // The agent's first question at start: an engine that is not there, or not a manager, is said plainly.
    await this.ping();
    const nodes = await this.nodes();
    const usable = nodes.filter(schedulable);
    if (usable.length === 0) throw new EngineUnavailableError(`the Swarm at ${this.where()} has no node that is ready and active`);
    const sizes = usable.map(nodeSize);
    const largest = sizes.reduce((a, b) => (b.cpus > a.cpus || (b.cpus === a.cpus && b.memoryMiB > a.memoryMiB) ? b : a));
    const gpus: Catalog['host']['gpus'] = [];
    // The GPU choices are those of the node with the most of each type: one task runs on one node.
    const byType = new Map<string, number>();
    for (const s of sizes) for (const [type, n] of Object.entries(s.gpus)) byType.set(type, Math.max(byType.get(type) ?? 0, n));
    for (const [type, n] of byType) for (let i = 0; i < n; i++) gpus.push({ index: gpus.length, type, name: `${type} (Swarm generic resource ${gpuKind(type)})`, memoryMiB: 0 });
    return {
      host: { cpus: largest.cpus, memoryMiB: largest.memoryMiB, gpus },
      nodes: nodes.map((n) => {
        const s = nodeSize(n);
        return {
          id: n.ID, name: n.Description.Hostname, role: n.Spec.Role === 'manager' ? 'manager' as const : 'worker' as const,
          state: n.Status.State, availability: n.Spec.Availability, address: n.Status.Addr ?? '',
          cpus: s.cpus, memoryMiB: s.memoryMiB, gpus: Object.entries(s.gpus).map(([type, count]) => ({ type, count })),
        };
      }),
    };
  }

  private async nodes(): Promise<SwarmNode[]> {
    return (await this.docker.listNodes()) as SwarmNode[];
  }

  private async nodeName(nodeId: string): Promise<string> {
    try {
      const n = (await this.docker.getNode(nodeId).inspect()) as SwarmNode;
      return `node ${n.Description.Hostname} (${n.ID.slice(0, 12)}, ${n.Status.Addr ?? 'no address'})`;
    } catch {
      return `node ${nodeId.slice(0, 12)}`;
    }
  }

  /** A description of the node if the manager considers it gone, else undefined. */
  private async lostNode(nodeId: string): Promise<string | undefined> {
    if (!nodeId) return undefined;
    let n: SwarmNode;
    try {
      n = (await this.docker.getNode(nodeId).inspect()) as SwarmNode;
    } catch (err) {
      if (statusOf(err) === 404) return `node ${nodeId.slice(0, 12)} (it left the Swarm)`;
      throw err;
    }
    if (!LOST.has(n.Status.State)) return undefined;
    return `node ${n.Description.Hostname} (${n.ID.slice(0, 12)}, ${n.Status.Addr ?? 'no address'}; state ${n.Status.State}` +
      `${n.Status.Message ? `: ${n.Status.Message}` : ''})`;
  }

  private nodeDockerMap(): Promise<Map<string, Docker>> {
    this.nodeDockers ??= (async () => {
      const map = new Map<string, Docker>();
      for (const d of [this.docker, ...(this.opts.nodeEngines ?? [])]) {
        try {
          const info = (await d.info()) as { Swarm?: { NodeID?: string } };
          if (info.Swarm?.NodeID) map.set(info.Swarm.NodeID, d);
        } catch {
          /* a node engine that does not answer: its tasks run without stats and outputs */
        }
      }
      return map;
    })();
    return this.nodeDockers;
  }
}

/** A run's service, not an endpoint's (those are the endpoints' to keep or remove). */
function isRunService(s: Docker.Service): boolean {
  return !s.Spec?.Labels?.[ENDPOINT_LABEL];
}

function isConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT';
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}
