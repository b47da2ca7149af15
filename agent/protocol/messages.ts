/**
 * The ByteNite wire protocol: every message that crosses the WebSocket between a client (the CLI, the
 * VS Code extension) and an agent, defined once. The zod schemas give both the TypeScript types and the
 * runtime validation; docs/protocol.md is generated from them (`npm run docs:protocol`).
 *
 * Text frames carry one JSON message each. Binary frames carry build-context bytes (client to agent, after
 * `run.accepted` says `upload: true`) and output archives (agent to client, after an `outputs` reply).
 */
import { z } from 'zod';

const id = z.string().min(1).max(128).describe('Request id chosen by the client; the reply echoes it in `inReplyTo`.');
const runId = z.string().regex(/^r-[a-z0-9]{6,40}$/).describe('Run id assigned by the agent.');
const sha256 = z.string().regex(/^[a-f0-9]{64}$/);
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).max(256);
const nonNegInt = z.number().int().nonnegative();
const containerPort = z.number().int().min(1).max(65535).describe('A TCP port inside the container.');

// ---------------------------------------------------------------- shared shapes

/** Hardware a run asks for. */
export const HardwareRequest = z.strictObject({
  cpus: z.number().positive().max(1024).describe('vCPUs (fractions allowed, e.g. 0.5).'),
  memoryMiB: z.number().int().min(6).max(16 * 1024 * 1024).describe('Memory limit in MiB (no swap beyond it).'),
  gpu: z.strictObject({
    type: z.string().min(1).max(64).describe('GPU type as the catalog names it, e.g. `h100`.'),
    count: z.number().int().min(1).max(64),
  }).optional().describe('GPUs; omit for none.'),
}).describe('Hardware a run asks for.');
export type HardwareRequest = z.infer<typeof HardwareRequest>;

/** A volume name: a tenant's own name for its data on the agent (not a path). */
export const volumeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
  .describe('Volume name: letters, digits, `_`, `.`, `-`, 1 to 64, starting with a letter or digit. Each tenant has its own names.');

/** One named volume a run mounts (`-v NAME:/path[:ro]`). */
export const VolumeMount = z.strictObject({
  name: volumeName,
  path: z.string().min(2).max(1024).regex(/^\/[^:,\0]*$/).refine((p) => !p.split('/').some((s) => s === '..' || s === '.'), 'no `.` or `..` segments')
    .describe('Absolute path inside the container where the volume is mounted (not `/`; no `:`, `,`, `.` or `..` segments).'),
  readOnly: z.boolean().default(false).describe('Mount read-only (`:ro`): many runs may read at once; a read-write mount has the volume to itself.'),
}).describe('A named volume of the run\'s tenant, created on first use and kept across runs and agent restarts.');
export type VolumeMount = z.infer<typeof VolumeMount>;

/** What to build and run. */
export const RunSpec = z.strictObject({
  dockerfile: z.string().min(1).max(4096).describe('Path of the Dockerfile inside the context, `/`-separated, relative.'),
  contextDigest: sha256.describe('Content digest of the context after `.dockerignore`, with the Dockerfile path and build args (see agent/context/digest.ts).'),
  contextBytes: nonNegInt.describe('Size of the context: the tar a client sends if asked, or with `context.manifest` the total size of its files.'),
  buildArgs: z.record(envName, z.string().max(65536)).default({}).describe('Build arguments (`--build-arg`).'),
  env: z.record(envName, z.string().max(1024 * 1024)).default({}).describe('Environment variables of the container.'),
  secretEnv: z.array(envName).max(1024).default([]).describe('Names in `env` whose values are secret: never logged, recorded or echoed.'),
  command: z.array(z.string().max(65536)).max(4096).optional().describe('Command that replaces the image\'s CMD.'),
  hardware: HardwareRequest,
  user: z.string().max(256).regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/).optional()
    .describe('Run as this user, as `docker run --user` reads it (name or uid, optionally `:group`); default: the image\'s USER. The output folder belongs to this user.'),
  timeoutMs: z.number().int().positive().max(30 * 24 * 3600 * 1000).optional().describe('Stop the run (SIGTERM, then SIGKILL) after this long running.'),
  name: z.string().max(256).optional().describe('Display name, e.g. the Dockerfile\'s path in the workspace.'),
  target: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/).optional()
    .describe('Build only up to this stage of a multi-stage Dockerfile (`--target`); part of what a warm start must match.'),
  noCache: z.boolean().optional().describe('Build cold, without the engine\'s build cache, even if an image of this digest exists (`--no-cache`).'),
  buildSecrets: z.record(z.string().regex(/^[A-Za-z0-9._-]{1,128}$/), z.string().max(700 * 1024)).optional()
    .refine((s) => !s || Object.keys(s).length <= 64, 'at most 64 build secrets')
    .describe('Build secrets by id, each value base64 (`RUN --mount=type=secret,id=…`). Held in memory for the build only: never journaled, logged, echoed, nor part of the digest.'),
  contextId: z.string().regex(/^[a-f0-9]{16,64}$/).optional()
    .describe('Stable id of the client\'s context folder (a hash, never the path): lets the engine keep its copy of the context between builds. Without it each content gets a copy of its own.'),
  parallel: z.number().int().min(1).max(256).optional()
    .describe('Fan-out: run this many tasks of the same image (one build); each gets BYTENITE_TASK_INDEX (0..N-1) and BYTENITE_TASK_COUNT. Default 1.'),
  ports: z.array(containerPort).max(64).optional()
    .describe('Container ports a client will forward (`-p`): the agent reports each with a `port` event once it first accepts a connection. Forwarding itself needs no declaration (see the tunnel endpoint).'),
  buildOnly: z.boolean().optional()
    .describe('Build (or find the warm image) and end there, with `exited` 0 and no container: how `bytenite deploy` builds an endpoint\'s image.'),
  volumes: z.array(VolumeMount).max(16).optional()
    .refine((v) => !v || new Set(v.map((m) => m.path)).size === v.length, 'two volumes at the same path')
    .describe('Named volumes to mount (`-v NAME:/path[:ro]`); host paths are never mounted.'),
  interactive: z.strictObject({
    tty: z.boolean().describe('Give the program a terminal (`-t`): its output is one byte stream, on `stdout`.'),
    idleTimeoutMs: z.number().int().min(1000).max(7 * 24 * 3600 * 1000).default(30 * 60_000)
      .describe('Stop the run after this long with neither input nor output (an `idle` event warns a minute before, or halfway for a shorter one).'),
    cols: z.number().int().min(1).max(1000).optional().describe('The terminal\'s width at the start (with `tty`).'),
    rows: z.number().int().min(1).max(1000).optional().describe('The terminal\'s height at the start (with `tty`).'),
  }).optional().describe('An interactive run (`run -i`, `run -it`): the program\'s stdin is open and reached through the `/stdin/RUN` WebSocket; no hot start, one task only. Without a client on that socket for a grace period, the run is stopped.'),
}).describe('What to build and run.');
export type RunSpec = z.infer<typeof RunSpec>;
export type RunSpecInput = z.input<typeof RunSpec>;

export const StartKind = z.enum(['hot', 'warm', 'cold']).describe(
  '`hot`: warm, and the container itself was started ahead of time and only waited for this run. ' +
  '`warm`: an image built from the same digest was reused, no upload, no build. `cold`: uploaded and built.');
export type StartKind = z.infer<typeof StartKind>;

export const Builder = z.enum(['buildkit', 'legacy']).describe('`buildkit`: the engine\'s BuildKit, fed by the agent\'s own session. `legacy`: the engine\'s pre-BuildKit builder (a fallback, or forced).');

export const Phases = z.strictObject({
  queuedMs: nonNegInt,
  uploadMs: nonNegInt,
  buildMs: nonNegInt,
  startMs: nonNegInt.describe('From container create to the process running.'),
  runMs: nonNegInt.describe('From the container\'s start to its exit.'),
}).describe('Time spent in each phase, in milliseconds.');
export type Phases = z.infer<typeof Phases>;

export const CostBreakdown = z.strictObject({
  currency: z.literal('USD'),
  total: z.number().nonnegative(),
  vcpu: z.number().nonnegative(),
  memory: z.number().nonnegative(),
  gpu: z.number().nonnegative(),
  billedMs: nonNegInt.describe('Billed duration: the container\'s run time rounded up to the billing increment.'),
  reference: z.array(z.strictObject({
    name: z.string(), total: z.number().nonnegative(),
    unpriced: z.string().optional().describe('Why this reference cannot price the whole run (e.g. `no h200`, `GPU machines only`); `total` then leaves that part out.'),
  })).default([])
    .describe('The same run priced at the reference rates of the agent\'s pricing table, each with its own billing increment and minimum.'),
}).describe('Cost of a run.');
export type CostBreakdown = z.infer<typeof CostBreakdown>;

/** Which task of a fan-out run (`spec.parallel` > 1) an event is about; absent on a run of one task. */
const task = nonNegInt.optional().describe('Task index (0..N-1) of a fan-out run; absent when the run has one task.');

/** How one task of a fan-out run ended. */
export const TaskResult = z.strictObject({
  index: nonNegInt,
  exitCode: z.number().int().nullable().describe('The task\'s exit code; null when it never ran or its outcome is unknown.'),
  oomKilled: z.boolean(),
  durationMs: nonNegInt.describe('The task\'s own run time.'),
  cost: CostBreakdown.describe('The task\'s cost, for its own running time.'),
  error: z.string().optional().describe('Why the task could not complete, when it could not.'),
}).describe('How one task of a fan-out run ended.');
export type TaskResult = z.infer<typeof TaskResult>;

/** What every final event carries. */
const finalFields = {
  exitCode: z.number().int().nullable().describe('The container\'s exit code; null when it never ran.'),
  oomKilled: z.boolean(),
  durationMs: nonNegInt.describe('The container\'s own run time (StartedAt to FinishedAt).'),
  cost: CostBreakdown,
  start: StartKind,
  steps: nonNegInt.describe('Build steps in the Dockerfile (0 for a warm start).'),
  cachedSteps: nonNegInt.describe('Build steps that came from the engine\'s cache.'),
  builder: Builder.optional().describe('Which builder built the image (cold starts only).'),
  phases: Phases,
  outputs: z.strictObject({
    files: nonNegInt, bytes: nonNegInt,
    expiresAt: z.string().optional().describe('ISO time until which the agent keeps them at the latest (its retention time); fetched ones may go sooner when room is needed.'),
    notKept: z.string().optional().describe('Set when the agent could not keep the outputs: why, naming the limit and the flag that raises it. `files` and `bytes` are then 0.'),
  }).describe('Files the run left under BYTENITE_OUTPUT_DIR, kept on the agent until fetched; fetch them with `outputs.get`.'),
  tasks: z.array(TaskResult).optional().describe(
    'Fan-out runs only, one per task by index. The run\'s `exitCode` is then the first non-zero task exit code (by index) or 0, ' +
      '`cost` the sum of the tasks\' costs, `durationMs` from the first task\'s start to the last one\'s end, and the outputs archive holds `task-N/` folders.',
  ),
};

// ---------------------------------------------------------------- run events

/** One event of a run. Every event the agent sends carries the run id and a sequence number. */
export const RunEvent = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('queued'), task, position: z.number().int().min(1).describe('1 = next to start.'),
    reason: z.string().optional().describe('Why, in the engine\'s words, when the engine itself holds the run back (e.g. Swarm: no suitable node).'),
  }).describe('Waiting for free capacity on the agent (or, on a cluster, for a node with room).'),
  z.strictObject({
    kind: z.literal('uploading'), bytesDone: nonNegInt, bytesTotal: nonNegInt,
    to: z.literal('engine').optional().describe('BuildKit, from the content store: the file contents the engine asked for over the build session (`bytesTotal`, growing as the engine walks the context; its kept copy has the rest) and how many of those bytes were sent (`bytesDone`). Comes while the run is `building`, the last one when the build ends.'),
  })
    .describe('Context bytes received so far: the tar\'s, or the manifest\'s text and the contents the agent asked for; with `to`, the context bytes sent on to the engine.'),
  z.strictObject({
    kind: z.literal('building'), step: z.number().int().min(1), steps: z.number().int().min(1),
    instruction: z.string(), cached: z.boolean(),
    state: z.enum(['started', 'done']).optional().describe('BuildKit: `started` when the step begins, `done` when it ends (a cached step only `done`). Absent from the legacy builder, whose steps are reported as they start (again with `cached` once known).'),
    ms: nonNegInt.optional().describe('With `done`: the step\'s time in milliseconds.'),
  }).describe('A build step started, ended, or was taken from cache.'),
  z.strictObject({
    kind: z.literal('starting'), start: StartKind, image: z.string(), cachedSteps: nonNegInt, steps: nonNegInt, builder: Builder.optional(),
    reason: z.string().optional().describe('Why a start is cold when it could have been warm, in words for the user (e.g. the agent removed its image to stay within its image budget).'),
  })
    .describe('The image is ready; the container is being created. Says warm or cold.'),
  z.strictObject({ kind: z.literal('running'), task, startedAt: z.string().describe('ISO time the container started.') })
    .describe('The container\'s process is running.'),
  z.strictObject({
    kind: z.literal('log'), task, stream: z.enum(['stdout', 'stderr', 'build']),
    time: z.string().describe('ISO time the agent received the bytes.'), data: z.string().describe('UTF-8 text; may hold several lines or part of one.'),
  }).describe('Output of the container (stdout/stderr) or of the build.'),
  z.strictObject({
    kind: z.literal('stats'), task, cpuPercent: z.number().nonnegative().describe('100 = one full vCPU.'),
    memoryBytes: nonNegInt, memoryLimitBytes: nonNegInt, pids: nonNegInt,
  }).describe('Resource use, about once a second while running.'),
  z.strictObject({
    kind: z.literal('port'), task, port: containerPort, state: z.literal('ready'),
    ms: nonNegInt.describe('From the container\'s start to the port\'s first accepted connection.'),
  }).describe('A watched container port (`spec.ports`, `ports.watch`) now accepts connections: a forward to it reaches the program.'),
  z.strictObject({ kind: z.literal('cost'), total: z.number().nonnegative(), billedMs: nonNegInt, currency: z.literal('USD') })
    .describe('Cost accrued so far, at least once a second while running (of all tasks together, on a fan-out run).'),
  z.strictObject({
    kind: z.literal('volume'), state: z.literal('over-quota'),
    usedBytes: nonNegInt.describe('What the tenant\'s volumes hold now, as the agent measured it.'),
    quotaBytes: nonNegInt.describe('The tenant\'s volume quota (`bytenite agent --volume-quota`).'),
    message: z.string().describe('What happened and what it means for the next run.'),
  }).describe('The tenant\'s volumes crossed their quota while this run wrote to one: this run goes on, the next one that writes a volume is refused.'),
  z.strictObject({
    kind: z.literal('placed'), task,
    volumes: z.array(volumeName).min(1).describe('The run\'s volumes, by the tenant\'s names.'),
    node: z.string().describe('Hostname of the node the run is placed on.'),
    nodeId: z.string().describe('Swarm id of that node.'),
    message: z.string().describe('Where each volume is and why the run goes there (or that a new one was made there).'),
  }).describe('On a cluster a volume lives on one node: the run was placed on the node that holds its volumes, or its new volumes were made on the node Swarm chose (later runs go there).'),
  z.strictObject({
    kind: z.literal('idle'), idleMs: nonNegInt.describe('How long the run has had neither input nor output.'),
    stopInMs: nonNegInt.describe('It is stopped this much later unless something is typed or printed.'),
    message: z.string().describe('The warning, in words for the user.'),
  }).describe('An interactive run has been idle: it will be stopped at its idle timeout (`spec.interactive.idleTimeoutMs`).'),
  z.strictObject({
    kind: z.literal('exec'), task, state: z.enum(['started', 'ended']), time: z.string().describe('ISO time of this event.'),
    command: z.array(z.string()).describe('The command, as the client gave it.'),
    tty: z.boolean(), by: z.string().describe('Who: the tenant and the client\'s address (`alpha from 10.0.0.7`).'),
    exitCode: z.number().int().nullable().optional().describe('With `ended`: the command\'s exit code (null: not known, or hung up).'),
    ms: nonNegInt.optional().describe('With `ended`: how long the session lasted.'),
  }).describe('A command ran inside the run\'s container (`bytenite exec`, Open Shell). The journal keeps who, when and what; never what was typed or printed.'),
  z.strictObject({ kind: z.literal('exited'), ...finalFields })
    .describe('Final: the container ran and exited (any exit code).'),
  z.strictObject({
    kind: z.literal('failed'), ...finalFields,
    code: z.enum(['upload', 'build', 'engine', 'hardware', 'timeout', 'internal', 'volume']),
    message: z.string().describe('What went wrong and what to do next.'),
  }).describe('Final: the run could not complete (bad build, engine gone, timeout...).'),
  z.strictObject({ kind: z.literal('cancelled'), ...finalFields })
    .describe('Final: a client cancelled the run.'),
]);
export type RunEvent = z.infer<typeof RunEvent>;
export type FinalEvent = Extract<RunEvent, { kind: 'exited' | 'failed' | 'cancelled' }>;
export { FINAL_KINDS, isFinal } from './finalEvent';

// ---------------------------------------------------------------- hardware catalog

export const GpuInfo = z.strictObject({
  index: nonNegInt, type: z.string().describe('Short type used in requests and prices, e.g. `h200`.'),
  name: z.string().describe('Full name as nvidia-smi gives it.'), memoryMiB: nonNegInt, uuid: z.string().optional(),
});
export type GpuInfo = z.infer<typeof GpuInfo>;

export const Prices = z.strictObject({
  currency: z.literal('USD'),
  vcpuSecond: z.number().nonnegative(), gibSecond: z.number().nonnegative(),
  gpuSecond: z.record(z.string(), z.number().nonnegative()).describe('By GPU type.'),
  incrementMs: z.number().int().positive().describe('Billing increment; durations round up to it.'),
  source: z.string(), date: z.string(),
  volume: z.strictObject({
    gibMonth: z.number().nonnegative().describe('USD per GiB of volume data per month (30 days), charged for what the volume holds.'),
    source: z.string(), date: z.string(),
  }).optional().describe('The storage price of named volumes, with its source.'),
}).describe('Prices per second of allocated resource.');
export type Prices = z.infer<typeof Prices>;

export const ReferenceRate = z.strictObject({
  name: z.string(), vcpuSecond: z.number().nonnegative(), gibSecond: z.number().nonnegative(),
  gpuSecond: z.record(z.string(), z.number().nonnegative()).default({}),
  incrementMs: z.number().int().positive(), source: z.string(), date: z.string(),
  minimumMs: nonNegInt.default(0).describe('Billed at least this long per run (Fargate and EC2: one minute).'),
  tailMs: nonNegInt.default(0).describe('Billed on top of each run: a serverless worker kept up (and billed) this long after its work, e.g. RunPod\'s 5 s idle timeout.'),
  gpuOnly: z.boolean().default(false).describe('Offers GPU machines only (CPU and memory come with the GPU): a run without a GPU is not priced here.'),
}).describe('Another provider\'s published rates, to compare a run\'s cost with.');
export type ReferenceRate = z.infer<typeof ReferenceRate>;

/** One part of the agent's disk use. */
export const StorageUse = z.strictObject({
  name: z.enum(['outputs', 'images', 'build-cache', 'journal', 'context-store']),
  usedBytes: nonNegInt, budgetBytes: nonNegInt,
  flag: z.string().describe('The `bytenite agent` flag that sets the budget (empty when none does).'),
  note: z.string().optional().describe('More about this part, e.g. how long outputs are kept.'),
}).describe('Disk the agent uses for one purpose, against its budget.');
export type StorageUse = z.infer<typeof StorageUse>;

export const Catalog = z.strictObject({
  host: z.strictObject({ cpus: z.number().positive(), memoryMiB: nonNegInt, gpus: z.array(GpuInfo) }),
  cpuOptions: z.array(z.number().positive()).describe('vCPU counts a run may ask for.'),
  memoryOptionsMiB: z.array(nonNegInt).describe('Memory sizes a run may ask for (any value up to the largest is accepted).'),
  gpuOptions: z.array(z.strictObject({ type: z.string(), name: z.string(), counts: z.array(z.number().int().positive()) })),
  nodes: z.array(z.strictObject({
    id: z.string(), name: z.string().describe('Host name.'), role: z.enum(['manager', 'worker']),
    state: z.string().describe('`ready`, `down`...'), availability: z.string().describe('`active`, `pause` or `drain`.'),
    address: z.string(), cpus: z.number().nonnegative(), memoryMiB: nonNegInt,
    gpus: z.array(z.strictObject({ type: z.string(), count: z.number().int().positive() })),
  })).optional().describe('The machines of a cluster engine (Swarm); `host` is then what one run can get on the largest.'),
  prices: Prices,
  reference: z.array(ReferenceRate),
  engine: z.string().optional().describe('The engine the agent runs on: kind, version, address and how the agent found it.'),
  storage: z.array(StorageUse).optional().describe('Disk the agent uses, each part against its budget (as of this reply).'),
}).describe('What the agent can run and what it costs.');
export type Catalog = z.infer<typeof Catalog>;

// ---------------------------------------------------------------- volumes

/** A named volume as the agent lists it to its tenant. */
export const VolumeSummary = z.strictObject({
  name: volumeName,
  sizeBytes: nonNegInt.describe('What the volume holds, as the engine measured it (`measuredAt`).'),
  measuredAt: z.string().describe('ISO time of that measure.'),
  createdAt: z.string(),
  lastUsedAt: z.string().optional().describe('ISO time a run last mounted it (absent: never since it was made).'),
  inUse: z.array(z.strictObject({ runId, readOnly: z.boolean() })).describe('The runs mounting it now.'),
  monthlyCost: z.number().nonnegative().describe('USD per month its size costs at the agent\'s storage price (`prices.volume`).'),
}).describe('A named volume of the tenant.');
export type VolumeSummary = z.infer<typeof VolumeSummary>;

// ---------------------------------------------------------------- context manifest

const entryPath = z.string().min(1).max(4096).describe('Relative, `/`-separated, no `.` or `..` segments, no trailing slash.');
const mode = z.number().int().min(0).max(0o7777).describe('Permission bits as the build sees them.');
const mtime = nonNegInt.optional().describe('Modification time, seconds since 1970; not part of the digest (default 0).');

/** One entry of a build context, as the client lists it after `.dockerignore` (see agent/context/listContext.ts). */
export const ManifestEntry = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file'), path: entryPath, mode, size: nonNegInt, sha256, mtime }),
  z.strictObject({ type: z.literal('dir'), path: entryPath, mode, mtime }),
  z.strictObject({ type: z.literal('symlink'), path: entryPath, mode, linkTarget: z.string().min(1).max(4096), mtime }),
]).describe('One entry of a build context: a file (by content digest), a folder or a symlink.');
export type ManifestEntry = z.infer<typeof ManifestEntry>;

const statNumber = z.string().regex(/^\d{1,24}$/).describe('A stat field as a decimal string (64-bit, or nanoseconds).');
/** What `lstat` says of one path, enough to tell it from any other file: device, inode, change and birth times. */
const StatIdentity = z.strictObject({
  dev: statNumber, ino: statNumber, ctimeNs: statNumber, birthtimeNs: statNumber,
});

/**
 * A context folder the agent may read itself, with the proof that the agent sees the client's folder: the
 * identities of the folder and of some of its entries, which the agent compares with its own `lstat` of the
 * same paths. Only a client of the agent's owner on loopback sends it, to an agent with `local-context`.
 */
export const LocalContext = z.strictObject({
  path: z.string().min(2).max(4096).regex(/^\/[^\0]*$/).describe('The folder\'s real path (no symlink in it), absolute.'),
  folder: StatIdentity.describe('lstat of the folder itself.'),
  entries: z.array(StatIdentity.extend({ path: entryPath })).min(1).max(16)
    .describe('lstat of some of the manifest\'s entries (the Dockerfile among them), by their path in the context.'),
}).describe('The context as a folder on the agent\'s own machine: the agent serves the engine from it and asks for no content.');
export type LocalContext = z.infer<typeof LocalContext>;


// ---------------------------------------------------------------- endpoints

const endpointName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/)
  .describe('Endpoint name: lower-case letters, digits and `-`, 1 to 63; the URL is `/e/NAME/` on the agent\'s own listener.');

/** How an endpoint scales and when its instances are ready. */
export const EndpointSettings = z.strictObject({
  port: containerPort.describe('The container port requests go to.'),
  min: z.number().int().min(0).max(64).default(0).describe('Instances kept running with no traffic (0: scale to zero).'),
  max: z.number().int().min(1).max(64).default(4).describe('Most instances at once.'),
  idleMs: z.number().int().min(100).max(24 * 3600 * 1000).default(60_000).describe('An instance with nothing in flight this long is stopped (down to `min`).'),
  concurrency: z.number().int().min(1).max(10_000).default(32).describe('Requests (and open WebSockets) in flight per instance before another one is started.'),
  readyPath: z.string().regex(/^\/[^\s]*$/).max(1024).optional().describe('An instance is ready once this path answers 2xx (else: once its port accepts a connection).'),
  public: z.boolean().default(false).describe('Serve requests without the tenant token (a public name is unique on the agent).'),
}).describe('How an endpoint scales and when its instances are ready.');
export type EndpointSettings = z.infer<typeof EndpointSettings>;
export type EndpointSettingsInput = z.input<typeof EndpointSettings>;

/** One running (or starting) instance of an endpoint. */
export const EndpointInstance = z.strictObject({
  runId, state: z.enum(['starting', 'ready', 'stopping']), inFlight: nonNegInt,
  start: StartKind.optional().describe('How its container started, once known.'),
  startedAt: z.string().optional(),
}).describe('One instance of an endpoint.');

/** What an endpoint's instances have cost (they are billed as runs are), and what one wake's idle window costs. */
export const EndpointCost = z.strictObject({
  today: z.number().nonnegative().describe('Since local midnight on the agent, running instances included at their cost so far.'),
  total: z.number().nonnegative().describe('Since `since`.'),
  since: z.string().describe('ISO time the endpoint was first deployed (a redeploy keeps counting).'),
  idle: z.strictObject({
    usd: z.number().nonnegative(), ms: nonNegInt,
    text: z.string().describe('e.g. `each wake keeps 1 vCPU · 2 GiB up 60 s after the last request: $0.0021`.'),
  }).describe('What an instance costs while it waits `idleMs` after its last request before it is stopped.'),
  reference: CostBreakdown.shape.reference.describe('The same instance time (`total`) at the reference rates, each with its own increment and minimum.'),
}).describe('What an endpoint has cost.');
export type EndpointCost = z.infer<typeof EndpointCost>;

/** An endpoint as the agent lists it. */
export const EndpointSummary = z.strictObject({
  name: endpointName, path: z.string().describe('`/e/NAME/`, on the agent\'s own HTTP(S) address.'),
  settings: EndpointSettings, hardware: HardwareRequest, image: z.string(), createdAt: z.string(),
  instances: z.array(EndpointInstance), queued: nonNegInt.describe('Requests held, waiting for an instance.'),
  requests: nonNegInt.describe('Requests served since the agent started.'),
  requestsToday: nonNegInt.optional().describe('Requests that arrived since local midnight on the agent (counted back from the request journal after a restart).'),
  cost: EndpointCost.optional().describe('Absent from agents that do not count it.'),
}).describe('An endpoint as the agent lists it.');
export type EndpointSummary = z.infer<typeof EndpointSummary>;

/** How long one wake of an instance took, part by part (the request that woke it carries it). */
export const WakePhases = z.strictObject({
  start: StartKind,
  admitMs: nonNegInt.describe('From the request to the container being created (capacity, image lookup).'),
  startMs: nonNegInt.describe('Create and start of the container (hot: only the go message).'),
  readyMs: nonNegInt.describe('From the process running to its port accepting (and `readyPath` answering 2xx).'),
}).describe('How long one wake of an instance took.');

/** One request through an endpoint: never its headers, query or body. */
export const RequestRecord = z.strictObject({
  seq: z.number().int().min(1), time: z.string().describe('ISO time the request arrived.'),
  requestId: z.string(), method: z.string(), path: z.string().describe('Path after `/e/NAME`, without the query.'),
  status: z.number().int().describe('HTTP status answered (101 for a WebSocket; 0 when the client left first).'),
  bytesIn: nonNegInt, bytesOut: nonNegInt.describe('Body bytes from the client, and to it.'),
  heldMs: nonNegInt.describe('From arrival to being sent to an instance.'),
  firstByteMs: nonNegInt.optional().describe('From arrival to the response\'s headers.'),
  totalMs: nonNegInt.describe('From arrival to the last byte (a WebSocket: to its close).'),
  instance: runId.optional(),
  wake: WakePhases.optional().describe('Set on the request that woke the instance it went to.'),
  error: z.string().optional().describe('Why the agent answered itself (401, 404, 502, 503).'),
}).describe('One request through an endpoint.');
export type RequestRecord = z.infer<typeof RequestRecord>;

// ---------------------------------------------------------------- schedules

const scheduleName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/)
  .describe('Schedule name: lower-case letters, digits and `-`, 1 to 63; each tenant has its own names.');

/** When a schedule fires and what it does with a time that finds its last run still going, or the agent down. */
export const ScheduleSettings = z.strictObject({
  cron: z.string().min(9).max(256).describe('Cron expression of 5 fields, or 6 with seconds first (`*/5 * * * * *`), as croner reads it.'),
  timezone: z.string().min(1).max(64).default('UTC').describe('IANA time zone the expression is read in, e.g. `Europe/Berlin`.'),
  overlap: z.enum(['skip', 'queue', 'allow']).default('skip')
    .describe('A time that comes while the schedule\'s last run is still going: `skip` records it as skipped, `queue` starts it when that run ends (one waits at most; more are skipped), `allow` starts it beside.'),
  catchUp: z.enum(['none', 'once', 'all']).default('once')
    .describe('Times missed while the agent was down: `none` drops them, `once` starts one run for all of them (recorded with the times it stands for), `all` one per time (each under `overlap`, at most 100).'),
}).describe('When a schedule fires, and its rules for overlapping and missed times.');
export type ScheduleSettings = z.infer<typeof ScheduleSettings>;
export type ScheduleSettingsInput = z.input<typeof ScheduleSettings>;

/** One time a schedule came due, or was run by hand, and what became of it. */
export const ScheduleFiring = z.strictObject({
  time: z.string().describe('ISO UTC time it was due (a manual run: when it was asked).'),
  trigger: z.enum(['cron', 'catch-up', 'manual']),
  result: z.enum(['running', 'queued', 'skipped', 'exited', 'failed', 'cancelled', 'refused']),
  runId: runId.optional(),
  exitCode: z.number().int().nullable().optional(),
  cost: z.number().nonnegative().optional().describe('USD, once its run has ended.'),
  standsFor: z.array(z.string()).optional().describe('A `once` catch-up: every missed time (ISO UTC) this one run stands for.'),
  reason: z.string().optional().describe('Why it was skipped or refused, in words for the user.'),
}).describe('One firing of a schedule.');
export type ScheduleFiring = z.infer<typeof ScheduleFiring>;

/** A schedule as the agent lists it. */
export const ScheduleSummary = z.strictObject({
  name: scheduleName, settings: ScheduleSettings, hardware: HardwareRequest, image: z.string(), createdAt: z.string(),
  paused: z.boolean(),
  next: z.array(z.string()).describe('The next three times (ISO UTC), in `settings.timezone`; empty while paused.'),
  timezone: z.string().describe('The zone `next` was computed in (the same as `settings.timezone`).'),
  last: ScheduleFiring.optional().describe('The latest firing, with its result.'),
  recent: z.array(ScheduleFiring).describe('The latest firings, newest first (at most 20).'),
  runs: nonNegInt.describe('Runs started to date.'),
  skipped: nonNegInt.describe('Times skipped to date (overlap, or a refused start).'),
  cost: z.number().nonnegative().describe('USD its ended runs cost to date.'),
}).describe('A schedule as the agent lists it.');
export type ScheduleSummary = z.infer<typeof ScheduleSummary>;

// ---------------------------------------------------------------- client -> agent

export const ClientMessage = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hello'), id, protocol: z.number().int().positive().describe('The protocol version the client speaks.'),
    client: z.string().max(256).describe('Client name and version, e.g. `bytenite-cli/0.1.0`.'),
  }).describe('First message on every connection.'),
  z.strictObject({ type: z.literal('hardware.get'), id }).describe('Ask for the hardware catalog and prices.'),
  z.strictObject({ type: z.literal('run.create'), id, spec: RunSpec })
    .describe('Start a run. The reply says whether the agent needs the context (cold) or already has the image (warm).'),
  z.strictObject({
    type: z.literal('context.manifest'), id, runId,
    entries: z.array(ManifestEntry).max(100_000).describe('The next entries, in the order they go in the archive.'),
    last: z.boolean().describe('True on the last part: the agent then checks the whole manifest against `spec.contextDigest`.'),
    local: LocalContext.optional().describe('On the first part only, to an agent with `local-context`: read the contents from this folder. The agent may decline (then it asks for contents as usual).'),
  }).describe('Instead of a tar, after `run.accepted` with `upload: true`: the context as a list of entries, in parts (each under the text-frame limit). Each part is answered by `context.missing`.'),
  z.strictObject({ type: z.literal('upload.end'), id, runId, bytes: nonNegInt })
    .describe('The binary frames of the context for `runId` are all sent (the tar, or the missing file contents); `bytes` is their total.'),
  z.strictObject({ type: z.literal('run.cancel'), id, runId }).describe('Stop a run: SIGTERM, then SIGKILL after the grace period.'),
  z.strictObject({
    type: z.literal('run.attach'), id, runId,
    afterSeq: nonNegInt.default(0).describe('Replay events with a greater sequence number, then follow live.'),
  }).describe('Follow a run\'s events (again) from a sequence number.'),
  z.strictObject({ type: z.literal('run.list'), id }).describe('List the runs the agent knows, newest first.'),
  z.strictObject({
    type: z.literal('outputs.get'), id, runId,
    offset: nonNegInt.default(0).describe('Start at this byte of the archive: a download that was cut resumes where it stopped.'),
    wait: z.boolean().default(false).describe('For a run still in progress: wait until its container has stopped, then stream the archive as the agent copies it out (without `wait`, asking before the run ends is an error).'),
  }).describe('Download the files a run left in its output folder, as a tar archive. One download at a time per connection.'),
  z.strictObject({
    type: z.literal('ports.watch'), id, runId, ports: z.array(containerPort).min(1).max(64),
  }).describe('Watch more container ports of a run (e.g. `bytenite attach -p`): each gets a `port` event once it accepts connections (at once if it already does). Answered by `ok`.'),
  z.strictObject({ type: z.literal('outputs.fetched'), id, runId })
    .describe('The client has written the outputs and checked them: the agent may now remove them first when it needs room. Answered by `ok`.'),
  z.strictObject({
    type: z.literal('endpoint.deploy'), id, name: endpointName,
    spec: RunSpec.describe('The spec of the `buildOnly` run that built the image (its digest must name an image the agent has); `buildOnly`, `buildSecrets` and `parallel` are ignored.'),
    settings: EndpointSettings,
  }).describe('Register (or replace) an endpoint whose image was built by a `buildOnly` run. Answered by `endpoint`.'),
  z.strictObject({ type: z.literal('endpoint.list'), id }).describe('List this tenant\'s endpoints. Answered by `endpoints`.'),
  z.strictObject({ type: z.literal('volume.list'), id }).describe('List this tenant\'s named volumes with their sizes. Answered by `volumes`.'),
  z.strictObject({ type: z.literal('volume.remove'), id, name: volumeName })
    .describe('Remove a named volume and its data; refused (`volume_in_use`) while a run mounts it. Answered by `ok`.'),
  z.strictObject({ type: z.literal('endpoint.remove'), id, name: endpointName })
    .describe('Remove an endpoint: new requests get 404, its instances finish what they hold and stop. Answered by `ok`.'),
  z.strictObject({
    type: z.literal('endpoint.requests'), id, name: endpointName,
    afterSeq: nonNegInt.default(0).describe('Only requests with a greater sequence number.'),
    limit: z.number().int().min(1).max(10_000).default(200).describe('At most this many of the latest ones.'),
    follow: z.boolean().default(false).describe('Then keep sending each new one as an `endpoint.request` message.'),
  }).describe('The request journal of an endpoint. Answered by `endpoint.requests`.'),
  z.strictObject({
    type: z.literal('schedule.add'), id, name: scheduleName,
    spec: RunSpec.describe('The spec of the `buildOnly` run that built the image, as for `endpoint.deploy`; each firing runs it (`buildOnly`, `buildSecrets` ignored).'),
    settings: ScheduleSettings,
  }).describe('Register (or replace) a schedule whose image was built by a `buildOnly` run. Answered by `schedule`.'),
  z.strictObject({ type: z.literal('schedule.list'), id }).describe('List this tenant\'s schedules. Answered by `schedules`.'),
  z.strictObject({ type: z.literal('schedule.remove'), id, name: scheduleName })
    .describe('Remove a schedule; a run it started goes on. Answered by `ok`.'),
  z.strictObject({ type: z.literal('schedule.run'), id, name: scheduleName })
    .describe('Run a schedule now, once (under its `overlap` rule), paused or not. Answered by `schedule`, whose `last` is this firing.'),
  z.strictObject({ type: z.literal('schedule.pause'), id, name: scheduleName })
    .describe('Stop firing at its times until resumed (times passed while paused are not caught up). Answered by `schedule`.'),
  z.strictObject({ type: z.literal('schedule.resume'), id, name: scheduleName })
    .describe('Fire at its times again, from now. Answered by `schedule`.'),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type ClientMessageInput = z.input<typeof ClientMessage>;

// ---------------------------------------------------------------- agent -> client

export const ErrorCode = z.enum([
  'bad_json', 'bad_message', 'too_large', 'hello_required', 'incompatible_version', 'not_found',
  'hardware_unavailable', 'bad_dockerfile_path', 'bad_context', 'unexpected_binary', 'engine_unavailable', 'internal',
  'name_taken', 'volume_in_use', 'over_quota', 'volume_refused',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const RunSummary = z.strictObject({
  runId, name: z.string().optional(), state: z.enum(['queued', 'uploading', 'building', 'starting', 'running', 'exited', 'failed', 'cancelled']),
  createdAt: z.string(), hardware: HardwareRequest, lastSeq: nonNegInt,
  final: RunEvent.optional().describe('The final event, once there is one.'),
  interactive: z.strictObject({ tty: z.boolean() }).optional()
    .describe('Started with `-i` (`tty`: with `-t`): `attach` reopens its stdin, as `docker attach` does.'),
});
export type RunSummary = z.infer<typeof RunSummary>;

export const AgentMessage = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hello'), inReplyTo: z.string(), protocol: z.number().int(), agent: z.string().describe('Agent version.'),
    capabilities: z.array(z.string()).describe('Features this agent offers, e.g. `warm-start`, `outputs`, `gpu`.'),
    engine: z.string().describe('Execution engine, e.g. `docker`.'),
  }).describe('Reply to hello: the versions match and the connection is ready.'),
  z.strictObject({ type: z.literal('hardware'), inReplyTo: z.string(), catalog: Catalog }).describe('Reply to hardware.get.'),
  z.strictObject({
    type: z.literal('run.accepted'), inReplyTo: z.string(), runId,
    upload: z.boolean().describe('True: send the context now as binary frames, then `upload.end`. False: warm, send nothing.'),
  }).describe('Reply to run.create; the run\'s events follow on this connection.'),
  z.strictObject({
    type: z.literal('context.missing'), inReplyTo: z.string(), runId,
    sha256s: z.array(sha256).describe('Contents of this part the agent does not hold (each once, not asked before in this upload).'),
    local: z.boolean().optional().describe('True: the agent reads the contents from the folder of `context.manifest`\'s `local` itself and asks for none.'),
  }).describe('Reply to context.manifest. After the last part, send the asked contents of all parts as binary frames, back to back in the order asked (any frame sizes), then `upload.end`.'),
  z.strictObject({ type: z.literal('ok'), inReplyTo: z.string() }).describe('A request succeeded and has nothing else to say.'),
  z.strictObject({ type: z.literal('runs'), inReplyTo: z.string(), runs: z.array(RunSummary) }).describe('Reply to run.list.'),
  z.strictObject({
    type: z.literal('outputs'), inReplyTo: z.string(), runId, offset: nonNegInt.describe('The first byte sent is this byte of the archive.'),
    bytes: nonNegInt.optional().describe('Size of the whole archive, when it is already complete (absent while the agent still copies it out).'),
  }).describe('Reply to outputs.get: the archive\'s bytes from `offset` follow as binary frames, then `outputs.end`.'),
  z.strictObject({
    type: z.literal('outputs.end'), inReplyTo: z.string(), runId,
    bytes: nonNegInt.describe('Size of the whole archive (0: the run left no file).'),
    sha256: sha256.optional().describe('SHA-256 of the whole archive, to check what was received.'),
    files: nonNegInt, fileBytes: nonNegInt.describe('Regular files in the archive and their total size.'),
    error: z.string().optional().describe('Set when the archive could not be completed (e.g. over the outputs budget): what was sent is to be discarded.'),
  }).describe('All output bytes are sent (or, with `error`, none will follow).'),
  z.strictObject({ type: z.literal('event'), runId, seq: z.number().int().min(1).describe('1, 2, 3... per run, no gaps.'), event: RunEvent })
    .describe('An event of a run this connection follows.'),
  z.strictObject({ type: z.literal('endpoint'), inReplyTo: z.string(), endpoint: EndpointSummary }).describe('Reply to endpoint.deploy.'),
  z.strictObject({ type: z.literal('endpoints'), inReplyTo: z.string(), endpoints: z.array(EndpointSummary) }).describe('Reply to endpoint.list.'),
  z.strictObject({
    type: z.literal('volumes'), inReplyTo: z.string(), volumes: z.array(VolumeSummary),
    usedBytes: nonNegInt.describe('What all the tenant\'s volumes hold.'), quotaBytes: nonNegInt.describe('The tenant\'s quota.'),
    price: z.strictObject({ gibMonth: z.number().nonnegative(), source: z.string() }).describe('The storage price the costs are at.'),
  }).describe('Reply to volume.list.'),
  z.strictObject({ type: z.literal('endpoint.requests'), inReplyTo: z.string(), name: endpointName, requests: z.array(RequestRecord) })
    .describe('Reply to endpoint.requests: the latest requests, oldest first.'),
  z.strictObject({ type: z.literal('endpoint.request'), name: endpointName, request: RequestRecord })
    .describe('A request an `endpoint.requests` with `follow` asked to be told of.'),
  z.strictObject({ type: z.literal('schedule'), inReplyTo: z.string(), schedule: ScheduleSummary })
    .describe('Reply to schedule.add, schedule.run, schedule.pause and schedule.resume.'),
  z.strictObject({ type: z.literal('schedules'), inReplyTo: z.string(), schedules: z.array(ScheduleSummary) }).describe('Reply to schedule.list.'),
  z.strictObject({
    type: z.literal('error'), inReplyTo: z.string().optional().describe('The request this answers, when the agent could read its id.'),
    code: ErrorCode, message: z.string().describe('What is wrong, naming the field, and what to do.'),
  }).describe('A request failed; the connection stays usable.'),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;
