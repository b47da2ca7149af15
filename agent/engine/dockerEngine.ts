/**
 * The single-machine engine: one Docker Engine reached through its API with dockerode. Every container
 * and image it makes is labelled (LABELS) so that it can be found again and cleaned up after a crash.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import {
  BuildError, BuildRequest, BuildResult, ContainerHandlers, ContainerSpec, Engine, EngineUnavailableError,
  LABELS, RunningContainer,
} from './engine';
import type { LogCursor } from '../store/runJournal';
import { HotPool, PoolEntry } from './hotPool';
import { buildWithBuildKit, type BuildKitOptions } from '../build/buildkitBuild';
import { chooseBuilder, type BuilderChoice, type BuilderSetting } from '../build/builderChoice';
import { engineAddress } from '../build/engineHttp';
import { buildLegacy } from '../build/legacyBuild';
import { TenantRegistryAuth, type RegistryAuth } from '../build/registryAuth';
import { mustAskRegistry } from '../build/baseImages';
import { findStaticBusybox, goMessage, shimEntrypoint } from './hotShim';
import { Owner, resolveOwner } from './imageUser';
import { outputSkeleton } from './outputSkeleton';
import { EngineTarget, describeTarget, dockerOptions } from './engineHost';
import { DockerImages } from '../images/dockerImages';
import { containerStdin } from '../interactive/containerStdin';
import { createOptions } from './createOptions';
import { TenantNetworks } from '../network/tenantNetworks';
import { blockMetadata } from '../network/metadataBlock';
import { isPodman, podmanQuirks, PodmanQuirks } from './podman';
import { DockerVolumes } from '../volumes/volumeBackend';
import { ignoreGone, superviseContainer, type Supervision, type WaitResult } from './superviseContainer';


export interface DockerEngineOptions {
  /** Which builder builds: `auto` (BuildKit when the engine has it) unless forced. */
  builder?: BuilderSetting;
  /** Told what each BuildKit file transfer sent to the engine. */
  onSent?: BuildKitOptions['onSent'];
  /** Credentials for private base images (both builders): one set, or per tenant. */
  registryAuth?: RegistryAuth | TenantRegistryAuth;
  /** Most containers kept started ahead of time for hot starts (0: none). */
  hotPool?: number;
  /** How long such a container waits for a run before it is removed. */
  hotIdleMs?: number;
  /** The engine to reach, and how it was found (agent/engine/engineHost.ts); used when no client is given. */
  target?: EngineTarget;
}

/** A container started ahead of time, its shim waiting on stdin for the run's go line. */
interface HotEntry extends PoolEntry {
  container: Docker.Container;
  attached: Duplex;
  waited: Promise<WaitResult>;
}

/** Defaults: a handful of waiting containers is cheap (a shell each, no CPU) and covers the runs being iterated on. */
const HOT_POOL_MAX = 4;
const HOT_IDLE_MS = 10 * 60_000;

/** The name a hot container takes once a run claims it: its labels were set before the run existed. */
function hotName(spec: Pick<ContainerSpec, 'runId' | 'task'>): string {
  return `bytenite-${spec.runId}${spec.task !== undefined ? `-t${spec.task}` : ''}`;
}

const HOT_NAME = /^\/?bytenite-(r-[0-9a-f]+)(?:-t\d+)?$/;

export class DockerEngine implements Engine {
  readonly name = 'docker';
  private readonly docker: Docker;
  private readonly skeletons = new Map<string, Buffer>();
  private readonly pool: HotPool<ContainerSpec, HotEntry>;
  /** A static busybox to copy into hot containers; without one there are no hot starts. */
  private readonly shim: Buffer | undefined;
  /** Context digest (tenant-scoped) → the image built from it, as found or built by this agent. */
  private readonly imagesByDigest = new Map<string, string>();
  /** Image id → its entrypoint and command, which a hot container's shim execs. */
  private readonly imageConfigs = new Map<string, ImageConfig>();
  /** Who containers of an image run as (by image and the run's user), resolved once. */
  private readonly owners = new Map<string, Owner | undefined>();
  /** This engine's images and build cache, measured and removed for the image budget (agent/images/). */
  readonly images: DockerImages;
  /** A network per tenant, containers kept apart (agent/network/). */
  private readonly networks: TenantNetworks;
  /** Tenants' named volumes (agent/volumes/). */
  readonly volumes: DockerVolumes;
  /** Agents whose networks this engine made, removed when it closes. */
  private readonly agentIds = new Set<string>();

  private readonly builderSetting: BuilderSetting;
  private builderChoice?: Promise<BuilderChoice>;
  private readonly onSent?: BuildKitOptions['onSent'];
  private readonly registryAuth?: TenantRegistryAuth;

  constructor(docker?: Docker, opts: DockerEngineOptions = {}) {
    this.target = opts.target;
    this.docker = docker ?? new Docker(opts.target ? dockerOptions(opts.target) : undefined);
    this.builderSetting = opts.builder ?? 'auto';
    this.volumes = new DockerVolumes(this.docker);
    this.onSent = opts.onSent;
    this.registryAuth = opts.registryAuth instanceof TenantRegistryAuth ? opts.registryAuth : new TenantRegistryAuth(opts.registryAuth);
    const max = opts.hotPool ?? HOT_POOL_MAX;
    this.shim = max > 0 ? findStaticBusybox() : undefined;
    this.pool = new HotPool<ContainerSpec, HotEntry>({
      max: this.shim ? max : 0,
      idleMs: opts.hotIdleMs ?? HOT_IDLE_MS,
      make: (spec) => this.makeHot(spec),
    });
    this.images = new DockerImages(this.docker, () => new Set(this.pool.coming().map((s) => s.image)));
    this.networks = new TenantNetworks(this.docker);
  }

  /** Blocks the metadata range for run containers where the agent can; says what holds, for the start-up line. */
  async isolation(): Promise<string> {
    const podman = await this.quirks();
    const { note } = await blockMetadata(this.local, podman ? PodmanQuirks.firewallChains : undefined);
    return `runs: ${podman ? PodmanQuirks.networkNote : 'a network per tenant with traffic between containers off'}; ${note}`;
  }

  /** `NetworkMode` of a container of `spec`: its tenant's network, or none. */
  private async networkMode(spec: ContainerSpec): Promise<string> {
    if (!spec.network) return 'none';
    this.agentIds.add(spec.agentId);
    return this.networks.networkFor(spec.agentId, spec.tenant ?? 'default');
  }

  private readonly target?: EngineTarget;
  /** Set when the engine is Podman: what the agent does differently there (agent/engine/podman.ts). */
  private podman?: Promise<PodmanQuirks | undefined>;

  private quirks(): Promise<PodmanQuirks | undefined> {
    this.podman ??= podmanQuirks(this.docker, this.local).catch(() => (this.podman = undefined));
    return this.podman;
  }

  /** The engine is on this machine (a local socket): its containers' addresses can be routed to. */
  private get local(): boolean {
    const host = this.target?.host;
    if (host) return host.startsWith('unix://') || host.startsWith('npipe://');
    return Boolean((this.docker.modem as { socketPath?: string }).socketPath);
  }

  private where(): string {
    if (this.target) return describeTarget(this.target);
    const m = this.docker.modem as { socketPath?: string; host?: string; port?: number };
    return m.socketPath ? `unix://${m.socketPath}` : `${m.host}:${m.port}`;
  }

  /** `Docker Engine 20.10.24 (API 1.41) at unix:///var/run/docker.sock (the default socket)`. */
  async describe(): Promise<string> {
    const v = await this.docker.version();
    const podman = isPodman(v as { Components?: Array<{ Name?: string }> }) ? await this.quirks() : undefined;
    const line = `${podman ? 'Podman Engine' : 'Docker Engine'} ${v.Version} (API ${v.ApiVersion}) at ${this.where()}`;
    return podman ? `${line}; legacy builder (no BuildKit on Podman); ${await podman.oomNote()}` : line;
  }

  async ping(): Promise<void> {
    try {
      await Promise.race([
        this.docker.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref()),
      ]);
    } catch (err) {
      const looked = this.target && this.target.looked.length > 1 ? ` Looked at, in order: ${this.target.looked.join('; ')}.` : '';
      throw new EngineUnavailableError(
        `no Docker Engine answers at ${this.where()} (${(err as Error).message}).${looked} ` +
          'Start one (`sudo systemctl start docker`, or on Debian `apt-get install docker.io && dockerd &`), ' +
          'or point DOCKER_HOST, a Docker context (`docker context use NAME`) or `bytenite agent --engine-host URL` at a running engine, then try again.',
      );
    }
  }

  async findImage(digest: string): Promise<string | undefined> {
    // Listing by label scans every image on the engine (100+ ms with a few hundred); asking for one
    // image by id takes a few. The map only saves the scan: the image is still checked to exist.
    const known = this.imagesByDigest.get(digest);
    if (known) {
      const there = await this.docker.getImage(known).inspect().then(() => true, (err: { statusCode?: number }) => {
        if (err.statusCode === 404) return false;
        throw err;
      });
      if (there) return known;
      this.imagesByDigest.delete(digest);
    }
    const images = await this.docker.listImages({ filters: { label: [`${LABELS.digest}=${digest}`] } });
    const id = images[0]?.Id;
    if (id) this.imagesByDigest.set(digest, id);
    return id;
  }

  async build(req: BuildRequest): Promise<BuildResult> {
    // BuildKit's session needs a connection of its own to the engine (over SSH: a dial-stdio channel of its own).
    const addr = await engineAddress(this.docker);
    this.builderChoice ??= chooseBuilder(addr, this.builderSetting);
    const choice = await this.builderChoice.catch((err) => {
      this.builderChoice = undefined;
      throw new EngineUnavailableError(`could not ask the engine at ${this.where()} which builder it has: ${(err as Error).message}`);
    });
    const buildKit = choice.builder === 'buildkit';
    const tracked = this.images.buildStarted(buildKit);
    const registryAuth = this.registryAuth?.for(req.tenant);
    // Another tenant's private base image may be on the engine already: then the registry decides (--pull).
    const pull = req.pull || (this.registryAuth ? await mustAskRegistry(this.registryAuth, req) : false);
    let ok = false;
    try {
      const built = buildKit
        ? await buildWithBuildKit(addr, { ...req, pull }, { apiVersion: choice.apiVersion, onSent: this.onSent, registryAuth })
        : await buildLegacy(this.docker, { ...req, pull }, { tracked, registryAuth, findImage: (d) => this.findImage(d) });
      ok = true;
      this.imagesByDigest.set(req.digest, built.imageId);
      return built;
    } finally {
      tracked.ended(ok);
    }
  }

  hotReady(spec: ContainerSpec): boolean {
    const key = this.hotKey(spec);
    return key !== undefined && this.pool.ready(key) > 0;
  }

  expect(spec: ContainerSpec): void {
    const key = this.hotKey(spec);
    if (key !== undefined) this.pool.more(key, spec);
  }

  async start(spec: ContainerSpec, handlers: ContainerHandlers): Promise<RunningContainer> {
    const key = this.hotKey(spec);
    // Taken before any await: hotReady() just said whether there is one, and the run was told so.
    const hot = key !== undefined ? this.pool.take(key) : undefined;
    try {
      if (hot) {
        const argv = await this.commandOf(spec.image, spec.command);
        const started = argv.length > 0 ? await this.goHot(hot, spec, argv, handlers) : undefined;
        if (started) return started;
        void hot.discard(); // no command (let the engine say so, as for any run), or Podman refused the name
      }
      return await this.startFresh(spec, handlers);
    } finally {
      // The next run like this one starts hot: the pool makes its container once this start is done.
      if (key !== undefined) this.pool.want(key, spec);
      // A collection after a build waits for this: it never competes with the start of the run's container.
      this.images.containerStarted();
    }
  }

  /**
   * What makes two runs' containers interchangeable: all they are created with. The run id and the
   * command are not part of it (the go message brings them); the environment is, so that a restarted
   * agent finds a run's secret values where it finds them for any run, in the container's config. A run
   * that sets its own BYTENITE_RUN_ID, or takes GPUs (a waiting container would pin them), gets none.
   */
  private hotKey(spec: ContainerSpec): string | undefined {
    // A run with volumes takes none either: a container made ahead would hold them before the run has their lock.
    // An interactive run takes none: its container is made with stdin open (and maybe a terminal).
    if (!this.pool.enabled || spec.hardware.gpu || spec.mounts?.length || spec.interactive || spec.env.BYTENITE_RUN_ID !== spec.runId) return undefined;
    const env = Object.entries(spec.env).filter(([k]) => k !== 'BYTENITE_RUN_ID').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const what = [spec.agentId, spec.image, env, spec.hardware.cpus, spec.hardware.memoryMiB, spec.pidsLimit, spec.network, spec.tenant ?? 'default', spec.outputDir, spec.task ?? null, spec.user ?? ''];
    return createHash('sha256').update(JSON.stringify(what)).digest('hex');
  }

  /** The argv a container of `image` runs: docker's rule, a given command replaces CMD and keeps ENTRYPOINT. */
  private async commandOf(image: string, command: string[] | undefined): Promise<string[]> {
    const cfg = await this.configOf(image);
    return [...cfg.entrypoint, ...(command ?? cfg.cmd)];
  }

  private async configOf(image: string): Promise<ImageConfig> {
    let cfg = this.imageConfigs.get(image);
    if (!cfg) {
      const c = (await this.docker.getImage(image).inspect()).Config;
      const list = (v: string | string[] | undefined | null) => (typeof v === 'string' ? [v] : v ?? []);
      const made: ImageConfig = { entrypoint: list(c.Entrypoint), cmd: list(c.Cmd), user: c.User ?? '' };
      this.imageConfigs.set(image, made);
      return made;
    }
    return cfg;
  }

  /**
   * The owner the output folder gets: the user a container of `spec` runs as (the run's, else the image's
   * USER), or undefined for root (the folder is then writable by all, for programs that switch user).
   */
  private async ownerFor(container: Docker.Container, spec: ContainerSpec): Promise<Owner | undefined> {
    const user = spec.user || (await this.configOf(spec.image)).user;
    if (!user || user === '0' || user === 'root' || user === '0:0' || user === 'root:root') return undefined;
    const key = `${spec.image}\0${user}`;
    if (!this.owners.has(key)) this.owners.set(key, await resolveOwner(container, user).catch(() => undefined));
    return this.owners.get(key);
  }

  /** A container for `spec`, started with the shim waiting for its go line, attached, its exit awaited. */
  private async makeHot(spec: ContainerSpec): Promise<HotEntry> {
    await this.commandOf(spec.image, undefined); // known when a run takes the container
    return this.onTenantNetwork(spec, (networkMode) => this.makeHotOn(spec, networkMode));
  }

  private async makeHotOn(spec: ContainerSpec, networkMode: string): Promise<HotEntry> {
    const env = Object.fromEntries(Object.entries(spec.env).filter(([k]) => k !== 'BYTENITE_RUN_ID'));
    const container = await this.docker.createContainer({
      ...createOptions(spec, env, networkMode),
      Entrypoint: shimEntrypoint(),
      Cmd: [],
      Labels: { [LABELS.managed]: '1', [LABELS.agent]: spec.agentId, [LABELS.hot]: '1' },
      AttachStdin: true,
      OpenStdin: true,
      // Stdin closes when the agent's attach ends: if the agent dies, the waiting shim reads EOF and exits.
      StdinOnce: true,
    });
    // Never throws: an engine that is away leaves the container to the leftover sweep of the next start.
    const discard = () => container.remove({ force: true, v: true }).then(() => undefined, () => undefined);
    try {
      const skeleton = this.skeleton(spec.outputDir, true, await this.ownerFor(container, spec));
      const attach = () => container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true }) as Promise<Duplex>;
      // Podman's attach creates the container's process (runc create): the shim must be in it first.
      const [, attached] = (await this.quirks())
        ? [await container.putArchive(skeleton, { path: '/' }), await attach()]
        : await Promise.all([container.putArchive(skeleton, { path: '/' }), attach()]);
      attached.on('error', () => {}); // an engine gone: alive() turns false and the wait settles
      const waited = container.wait({ condition: 'next-exit' }) as Promise<WaitResult>;
      let settled = false;
      waited.then(() => (settled = true), () => (settled = true));
      await container.start();
      return {
        container, attached, waited,
        alive: () => !settled && !attached.destroyed,
        discard: () => {
          attached.destroy();
          return discard();
        },
      };
    } catch (err) {
      await discard();
      throw err;
    }
  }

  /**
   * Gives a hot container its run: the go message and the name that ties it to its run for a restarted agent
   * (labels cannot change after create), then it is followed like any started container. Docker's rename is
   * not awaited before the go: a round trip of 5-13 ms, a fifth of a hot start; an agent killed within it
   * finds no container for the run, says the run was lost and removes the container as left over. Podman
   * (whose older versions have no rename) is named first, and undefined means it refused.
   */
  private async goHot(hot: HotEntry, spec: ContainerSpec, argv: string[], handlers: ContainerHandlers): Promise<RunningContainer | undefined> {
    const [podman, name] = [await this.quirks(), { name: hotName(spec) }];
    if (podman && !(await hot.container.rename(name).then(() => true, () => false))) return undefined;
    const goAt = new Date();
    hot.attached.write(goMessage(spec.runId, argv));
    if (!podman) hot.container.rename(name).catch(() => {}); // the run goes on; only a restart would miss it
    return superviseContainer(this.supervision(), hot.container, spec.outputDir, handlers, hot.waited, goAt, { stream: hot.attached, live: true }, goAt);
  }

  private async startFresh(spec: ContainerSpec, handlers: ContainerHandlers): Promise<RunningContainer> {
    return this.onTenantNetwork(spec, (networkMode) => this.startFreshOn(spec, handlers, networkMode));
  }

  /**
   * Runs `start` with the tenant's network, once more on a network made again if the engine says it is
   * gone: the leftover sweep removes a network no container is on, and a run's create can fall between
   * that sweep's look and its removal (seen when the engine comes back after being away).
   */
  private async onTenantNetwork<T>(spec: ContainerSpec, start: (networkMode: string) => Promise<T>): Promise<T> {
    const networkMode = await this.networkMode(spec);
    try {
      return await start(networkMode);
    } catch (err) {
      if (networkMode === 'none' || !/network \S+ not found/i.test((err as Error).message ?? '')) throw err;
      this.networks.forget(networkMode);
      return start(await this.networkMode(spec));
    }
  }

  private async startFreshOn(spec: ContainerSpec, handlers: ContainerHandlers, networkMode: string): Promise<RunningContainer> {
    const hw = spec.hardware;
    const container = await this.docker.createContainer(createOptions(spec, spec.env, networkMode));
    try {
      // Create the output folder first so the program can simply write to it, whatever its image holds.
      // Attach before start so no output is missed. Attach, not the log API: following the log file is
      // about five times slower here (1M lines: 16 s against 3.3 s) and can end before its last line.
      // The three requests go together: none needs another (the archive is the slow one, 50-100 ms here).
      // `next-exit` must be asked before start: a plain wait made before start returns at once.
      const waited = container.wait({ condition: 'next-exit' }) as Promise<WaitResult>;
      waited.catch(() => {});
      const skeleton = this.skeleton(spec.outputDir, false, await this.ownerFor(container, spec));
      const io = spec.interactive;
      const [, attached] = await Promise.all([
        container.putArchive(skeleton, { path: '/' }),
        // Interactive: a hijacked connection, whose write side is the process's stdin.
        container.attach({ stream: true, stdout: true, stderr: true, ...(io ? { stdin: true, hijack: true } : {}) }) as Promise<NodeJS.ReadableStream>,
      ]);
      await container.start();
      if (io?.tty && io.cols && io.rows) await container.resize({ w: io.cols, h: io.rows }).catch(() => {});
      const stdin = io ? containerStdin(container, attached as Duplex, io.tty) : undefined;
      return superviseContainer(this.supervision(), container, spec.outputDir, handlers, waited, new Date(), { stream: attached, live: true, tty: io?.tty, stdin });
    } catch (err) {
      await container.remove({ force: true, v: true }).catch(() => {});
      const msg = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
      const hint = hw.gpu ? ((await this.quirks()) ? ` (${PodmanQuirks.noGpu})` : ' (GPU runs need the NVIDIA Container Toolkit on the agent\'s host)') : '';
      throw new Error(`the engine could not start the container: ${msg}${hint}`);
    }
  }

  async reattach(containerId: string, outputDir: string, handlers: ContainerHandlers, cursor?: LogCursor, startedAt?: Date): Promise<RunningContainer> {
    const container = this.docker.getContainer(containerId);
    const info = await container.inspect();
    const waited = container.wait({ condition: 'not-running' }) as Promise<WaitResult>;
    waited.catch(() => {});
    // The log file holds the same bytes as the attach stream did: read it from the start and skip what
    // was delivered before the restart. (A timestamp cursor cannot come from this engine.)
    const skip = cursor && !('time' in cursor) ? cursor : undefined;
    const stream = (await container.logs({ follow: true, stdout: true, stderr: true })) as unknown as NodeJS.ReadableStream;
    // A hot container started long before its run: the run's own start comes from the journal.
    return superviseContainer(this.supervision(), container, outputDir, handlers, waited, startedAt ?? new Date(info.State.StartedAt), { stream, live: false, skip, tty: Boolean(info.Config.Tty) }, startedAt);
  }

  async containerEnv(containerId: string): Promise<Record<string, string>> {
    const info = await this.docker.getContainer(containerId).inspect();
    const env: Record<string, string> = {};
    for (const kv of info.Config.Env ?? []) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return env;
  }

  async listOwn(agentId: string): Promise<Array<{ id: string; runId: string; running: boolean }>> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.agent}=${agentId}`] } });
    return list.map((c) => ({ id: c.Id, runId: runOf(c), running: c.State === 'running' }));
  }

  /** What following a container needs of this engine (agent/engine/superviseContainer.ts). */
  private supervision(): Supervision {
    return { quirks: () => this.quirks(), local: this.local, where: this.where() };
  }

  async removeLeftovers(agentId: string, keep: ReadonlySet<string>): Promise<number> {
    // Only this agent's containers: another agent on the same engine keeps its own.
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.agent}=${agentId}`] } });
    let removed = 0;
    for (const c of list) {
      if (keep.has(runOf(c))) continue;
      if (this.pool.holds((e) => e.container.id === c.Id)) continue; // waiting for a run, not left over
      await this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignoreGone);
      removed++;
    }
    await this.networks.removeUnused(agentId).catch(() => 0);
    return removed;
  }

  async close(): Promise<void> {
    await this.pool.close();
    // A network goes once no container is on it: runs still going after a restart keep theirs.
    for (const id of this.agentIds) await this.networks.removeUnused(id).catch(() => 0);
  }

  /**
   * A tar holding the output folder, owned by the user the container runs as (unknown: root, and
   * writable by all), and, for a hot container, the shim; made once each. Headers are written here rather
   * than packed from a folder: owner and mode must be exactly these, whoever runs the agent.
   */
  private skeleton(outputDir: string, withShim: boolean, owner: Owner | undefined): Buffer {
    const id = `${withShim ? 'hot' : 'plain'}:${outputDir}:${owner ? `${owner.uid}:${owner.gid}` : '-'}`;
    let skel = this.skeletons.get(id);
    if (!skel) this.skeletons.set(id, (skel = outputSkeleton(outputDir, owner, withShim ? this.shim : undefined)));
    return skel;
  }
}

interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  /** The image's USER ('' for root). */
  user: string;
}

/** The run a container belongs to: its label, or for a hot container the name it took when a run claimed it. */
function runOf(c: Docker.ContainerInfo): string {
  const label = c.Labels[LABELS.run];
  if (label) return label;
  for (const n of c.Names ?? []) {
    const m = HOT_NAME.exec(n);
    if (m) return m[1];
  }
  return '';
}
