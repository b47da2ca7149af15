/**
 * The execution engine behind the agent: builds an image from a context and runs one container with
 * limits. The agent's run lifecycle only talks to this interface, so a multi-node engine (Swarm) can be
 * added beside the single-machine Docker one.
 */
import type { Catalog, HardwareRequest } from '../protocol';
import type { LogCursor } from '../store/runJournal';
import type { ImageStore } from '../images/imageStore';
import type { ManifestEntry } from '../protocol';
import type { FileSource } from '../build/fileSyncSender';

export class EngineUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineUnavailableError';
  }
}

/** No part of the engine could ever hold the hardware a run asks for (a cluster whose nodes are all smaller). */
export class HardwareUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HardwareUnavailableError';
  }
}

/** A build failure caused by the Dockerfile or the context (the user's to fix), not by the engine. */
export class BuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}

export interface BuildStep {
  step: number;
  steps: number;
  instruction: string;
  cached: boolean;
  /** BuildKit reports both ends of a step: `started`, then `done` with its time. Legacy steps have neither. */
  state?: 'started' | 'done';
  /** With `done`: how long the step took (0 for a cached one). */
  ms?: number;
}

/**
 * A context kept in the agent's content store (a manifest upload): BuildKit reads it from there file by file,
 * and only the files the engine's kept copy lacks.
 */
export interface StoredContext {
  entries: readonly ManifestEntry[];
  files: FileSource;
  /** Names the engine's kept copy of this context: the same for every build of one tenant's context, never two. */
  key: string;
}

/**
 * A build context tar: a file, or a function that opens it as a stream (assembled from the content store,
 * which it then also offers as `stored`).
 */
export type ContextTar = string | ((() => NodeJS.ReadableStream) & { stored?: StoredContext });

/** Which of the engine's builders built an image. */
export type Builder = 'buildkit' | 'legacy';

export interface BuildRequest {
  contextTar: ContextTar;
  dockerfile: string;
  buildArgs: Record<string, string>;
  /** Content digest of the context; the image is labelled with it so a later run can start warm. */
  digest: string;
  /** The agent that builds (label io.bytenite.agent): only it removes the image (agent/images/). */
  agentId?: string;
  /** Whose build it is: registry credentials are per tenant. */
  tenant?: string;
  onStep(step: BuildStep): void;
  onLog(text: string): void;
  /** BuildKit from the content store: file content bytes the engine asked for so far, and how many were sent. */
  onTransfer?(t: { bytesDone: number; bytesTotal: number }): void;
  /** Cancels the build at the engine (and ends its session). */
  signal?: AbortSignal;
  /** Build only up to this stage. */
  target?: string;
  /** Build without the engine's cache. */
  noCache?: boolean;
  /** Ask the registry for every base image even when the engine has it (`docker build --pull`). */
  pull?: boolean;
  /** Build secrets by id (BuildKit only; values never leave memory, never logged). */
  secrets?: ReadonlyMap<string, Buffer>;
}

export interface BuildResult {
  imageId: string;
  steps: number;
  cachedSteps: number;
  builder: Builder;
  /** BuildKit from the content store: the files and content bytes the engine asked for (its copy had the rest). */
  sent?: { files: number; bytes: number };
}

export interface ContainerSpec {
  runId: string;
  /** The task index of a fan-out run (label io.bytenite.task); absent when the run has one task. */
  task?: number;
  /** The agent that owns the container (label io.bytenite.agent). */
  agentId: string;
  image: string;
  env: Record<string, string>;
  command?: string[];
  hardware: HardwareRequest;
  /** Folder inside the container whose files come back to the client after the run. */
  outputDir: string;
  pidsLimit: number;
  network: boolean;
  /** The tenant whose run it is: its containers share a network no other tenant's container is on. */
  tenant?: string;
  /** The user to run as (`docker run --user`: name or uid, with an optional `:group`); the image's USER when absent. */
  user?: string;
  /** Aborts a start that waits (an engine that queues work itself, like Swarm, may wait long). */
  signal?: AbortSignal;
  /** Named volumes of the engine to mount (agent/volumes/); never a host path. */
  mounts?: ContainerMount[];
  /** `run -i` / `-it`: stdin open (and a terminal of this size); the container then has `stdin`. */
  interactive?: { tty: boolean; cols?: number; rows?: number };
}

/** A named volume as a container mounts it. */
export interface ContainerMount {
  /** The engine's name of the volume. */
  volume: string;
  target: string;
  readOnly: boolean;
}

export interface ContainerHandlers {
  /** `cursor` says where the log stream stands after this text: give it back to `reattach` to continue there. */
  onOutput(stream: 'stdout' | 'stderr', text: string, cursor?: LogCursor): void;
  onStats(stats: { cpuPercent: number; memoryBytes: number; memoryLimitBytes: number; pids: number }): void;
  /** The engine holds the run back until it has room (Swarm: a pending task), saying why in its own words. */
  onQueued?(reason: string): void;
}

export interface ExitInfo {
  exitCode: number;
  oomKilled: boolean;
  startedAt: Date;
  finishedAt: Date;
  /** Set when the engine reports why the container could not run (e.g. a GPU driver missing). */
  error?: string;
}

export interface RunningContainer {
  readonly id: string;
  readonly startedAt: Date;
  /** Resolves when the container exits and all its output has been delivered. */
  readonly exited: Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after `graceSeconds`. */
  stop(graceSeconds: number): Promise<void>;
  /**
   * The output folder of the (stopped) container as a tar stream (entries start with the folder's own
   * name, as the engine's archive API gives them); undefined when the folder is not there.
   */
  openOutputs(): Promise<NodeJS.ReadableStream | undefined>;
  remove(): Promise<void>;
  /** A connection to a TCP port inside the container (port forwards); absent where the engine cannot reach one. */
  dial?(port: number): Promise<import('node:stream').Duplex>;
  /** Whether the container accepts connections on `port` now. */
  probe?(port: number): Promise<boolean>;
  /** The main process's stdin, for a container started with `interactive`; absent otherwise or where the engine has none. */
  stdin?: import('../interactive/containerStdin').ContainerStdin;
  /** A command inside the container (`bytenite exec`); absent where the engine cannot start one. */
  exec?(req: import('../interactive/containerExec').ExecRequest): Promise<import('../interactive/containerExec').ExecSession>;
}

/** What an engine that spans several machines offers: `host` is what one run can get, `nodes` the machines. */
export interface EngineHardware {
  host: Catalog['host'];
  nodes?: NonNullable<Catalog['nodes']>;
}

export interface Engine {
  readonly name: string;
  /**
   * True when the engine places and queues runs itself (Swarm): the agent then admits every run at once
   * instead of queueing by its own host's capacity, and reports the engine's waiting (`onQueued`).
   */
  readonly schedules?: boolean;
  /** Why this engine cannot serve endpoints, if it cannot (the agent must reach an instance's port). */
  readonly noEndpoints?: string;
  /** An engine whose endpoints are replicated services (Swarm) rather than one run per instance. */
  readonly endpointServices?: import('./swarmService').SwarmServices;
  /** Why this engine cannot run interactive runs (`-i`, `-it`) or exec into one, if it cannot. */
  readonly noInteractive?: string;
  /** The hardware to offer, when it is not this machine's (a cluster's nodes). */
  hardware?(): Promise<EngineHardware>;
  /** Throws EngineUnavailableError with a message that says how to get an engine running. */
  ping(): Promise<void>;
  /** What the engine is, its version, where it is and how the agent found it, in one line. */
  describe?(): Promise<string>;
  /** The image already built from this context digest, if the engine still has it. */
  findImage(digest: string): Promise<string | undefined>;
  build(req: BuildRequest): Promise<BuildResult>;
  /** Creates, attaches to and starts a container (or gives a hot one its run); resolves once it is running. */
  start(spec: ContainerSpec, handlers: ContainerHandlers): Promise<RunningContainer>;
  /**
   * Whether `start` with this spec, called next and without awaiting in between, will take a container
   * started ahead of time (a hot start). Engines without such a pool leave it out.
   */
  hotReady?(spec: ContainerSpec): boolean;
  /** A run with this spec waits for capacity: a container for it may be made ahead while it waits. */
  expect?(spec: ContainerSpec): void;
  /** Its named volumes (agent/volumes/); absent where a run cannot have one (Swarm: a volume is node-local). */
  readonly volumes?: import('../volumes/volumeBackend').VolumeBackend;
  /** Its images and build cache, for the image budget (agent/images/); engines without one keep all they build. */
  readonly images?: ImageStore;
  /** Sets up what keeps runs apart on the network, and says in one line what holds (for the start-up log). */
  isolation?(): Promise<string>;
  /** Lets go of what the engine holds for future runs (hot containers). */
  close?(): Promise<void>;
  /**
   * Follows a container this agent started before it restarted: its logs continue after `cursor` (none
   * repeated, none skipped); `exited` resolves at once if it already stopped.
   */
  reattach(containerId: string, outputDir: string, handlers: ContainerHandlers, cursor?: LogCursor, startedAt?: Date): Promise<RunningContainer>;
  /** A container's environment (to hide a recovered run's secret values, which the journal never holds). */
  containerEnv(containerId: string): Promise<Record<string, string>>;
  /** This agent's containers, by run id, with whether each is still running. */
  listOwn(agentId: string): Promise<Array<{ id: string; runId: string; running: boolean }>>;
  /** Removes containers this agent labelled that no run owns any more; returns how many. */
  removeLeftovers(agentId: string, keep: ReadonlySet<string>): Promise<number>;
}

/** Label keys on every image and container the agent makes, so they can be found again after a crash. */
export const LABELS = {
  run: 'io.bytenite.run',
  digest: 'io.bytenite.digest',
  managed: 'io.bytenite.managed',
  agent: 'io.bytenite.agent',
  task: 'io.bytenite.task',
  /** A container started ahead of time, waiting for a run (a hot start). */
  hot: 'io.bytenite.hot',
} as const;

/** The labels of a run's container (or service): its run, its agent and, on a fan-out run, its task. */
export function containerLabels(spec: Pick<ContainerSpec, 'runId' | 'agentId' | 'task'>): Record<string, string> {
  return {
    [LABELS.managed]: '1', [LABELS.run]: spec.runId, [LABELS.agent]: spec.agentId,
    ...(spec.task !== undefined ? { [LABELS.task]: String(spec.task) } : {}),
  };
}
