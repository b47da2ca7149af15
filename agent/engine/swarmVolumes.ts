/**
 * Tenants' named volumes on a Swarm: a `local` volume lives on the node whose engine made it, so a run that
 * mounts one is placed on that node (`node.id==ID`), and a volume that exists nowhere yet is made by the
 * engine of whichever node Swarm picks, then recorded there. A volume whose node is down or drained is
 * refused, naming the node: a new empty volume elsewhere would silently leave the data behind.
 *
 * Where each volume is, is recorded on the manager as a Swarm config named after the volume (its labels: the
 * volume's own, plus the node id), not found by asking each node's engine: the agent reaches only the manager
 * and the `--node-engine` nodes, so a volume on any other node would look missing and be made again empty
 * elsewhere. A config is in the Swarm's raft store, so the record survives the agent, its data folder and a
 * move to another manager; and its create is atomic by name, so two placements cannot both record a volume.
 * In the agent, the first placement of a volume holds the others of that volume until it is recorded: two
 * read-only runs (or the tasks of a fan-out) of a new volume cannot be made on two nodes.
 */
import type Docker from 'dockerode';
import { DockerVolumes, VolumeInUseError, type EngineVolume, type PlacedEvent, type VolumeBackend } from '../volumes/volumeBackend';
import { VolumeError } from '../volumes/volumes';
import type { ContainerMount, ContainerSpec } from './engine';

/** The config label that names the node holding the volume. */
const NODE_LABEL = 'io.bytenite.node';
const NAME_LABEL = 'io.bytenite.volume';
/** A node's availability other than active, as the refusal says it. */
const AWAY: Record<string, string> = { drain: 'drained', pause: 'paused' };

interface NodeLike {
  ID: string;
  Spec: { Availability: string };
  Description: { Hostname: string };
  Status: { State: string };
}

interface ConfigInfo {
  ID: string;
  CreatedAt?: string;
  Spec: { Name: string; Labels?: Record<string, string> };
}

/** What a start does with its volumes: where the task must go, and what to record once it runs. */
export interface VolumePlacement {
  constraints: string[];
  /** The task runs on `nodeId` (undefined: it never started): new volumes are recorded there. Once only. */
  settle(nodeId: string | undefined): Promise<void>;
}

/**
 * How long a removal waits for a finished run's task container to go. Removing a service only tells the
 * node to stop and remove its task's container, which it does a moment later: a `volume rm` right after a
 * run would otherwise find the volume in use. No run of the agent's holds it (the caller checked its locks),
 * so what is still using it is a finished task on its way out, or a container someone else started there.
 */
const RELEASE_WAIT_MS = 10_000;

async function removeOnceReleased(volumes: DockerVolumes, engineName: string): Promise<void> {
  const deadline = Date.now() + RELEASE_WAIT_MS;
  for (;;) {
    try {
      return await volumes.remove(engineName);
    } catch (err) {
      if (!(err instanceof VolumeInUseError) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const NOTHING: VolumePlacement = { constraints: [], settle: async () => {} };

export class SwarmVolumes implements VolumeBackend {
  /** The labels each volume is made with, from the lifecycle's `create` (the node's engine makes it). */
  private readonly labelsOf = new Map<string, Record<string, string>>();
  /** Volumes whose first placement is in progress: other starts of them wait. */
  private readonly placing = new Map<string, Promise<void>>();
  private readonly followers = new Map<string, (e: PlacedEvent) => void>();

  constructor(private readonly docker: Docker, private readonly nodeEngines: () => Promise<Map<string, Docker>>) {}

  /** Nothing to make yet: the node's engine makes the volume when the task starts there, with these labels. */
  async create(engineName: string, labels: Record<string, string>): Promise<void> {
    this.labelsOf.set(engineName, labels);
  }

  /** The recorded volumes: those of every node, reachable or not. */
  async list(labels: Record<string, string>): Promise<EngineVolume[]> {
    const configs = await this.configs(Object.entries(labels).map(([k, v]) => `${k}=${v}`));
    return configs.map((c) => {
      const { [NODE_LABEL]: _node, ...rest } = c.Spec.Labels ?? {};
      return { engineName: c.Spec.Name, labels: rest, createdAt: c.CreatedAt ?? new Date(0).toISOString() };
    });
  }

  /** Measured on the nodes the agent can reach (the manager's and `--node-engine`); elsewhere unknown (0). */
  async sizes(): Promise<Map<string, number>> {
    const all = new Map<string, number>();
    for (const d of (await this.nodeEngines()).values()) {
      const sizes = await new DockerVolumes(d).sizes().catch(() => new Map<string, number>());
      for (const [name, n] of sizes) all.set(name, (all.get(name) ?? 0) + n);
    }
    return all;
  }

  async remove(engineName: string): Promise<void> {
    const rec = await this.recordOf(engineName);
    if (!rec) return;
    const d = (await this.nodeEngines()).get(rec.nodeId);
    if (!d) {
      const node = await this.describe(rec.nodeId);
      throw new VolumeError('volume_refused', `volume ${rec.name} is on ${node}, whose engine this agent cannot reach: start the agent with ` +
        `--node-engine for that node, or remove it there (docker volume rm ${engineName})`);
    }
    await removeOnceReleased(new DockerVolumes(d), engineName);
    await this.docker.getConfig(rec.configId).remove().catch((err) => {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    });
  }

  async refuse(volumes: Array<{ engineName: string; name: string }>): Promise<string | undefined> {
    try {
      await this.where(volumes.map((v) => ({ key: v.engineName, name: v.name })));
      return undefined;
    } catch (err) {
      if (err instanceof VolumeError) return err.message;
      throw err;
    }
  }

  follow(runId: string, onPlaced: (e: PlacedEvent) => void): () => void {
    this.followers.set(runId, onPlaced);
    return () => {
      if (this.followers.get(runId) === onPlaced) this.followers.delete(runId);
    };
  }

  /** Mounts of the task: each node's engine makes a missing volume with the same labels as the Docker engine. */
  mounts(mounts: readonly ContainerMount[] | undefined): object[] {
    return (mounts ?? []).map((m) => ({
      Type: 'volume', Source: m.volume, Target: m.target, ReadOnly: m.readOnly,
      VolumeOptions: { Labels: this.labelsOf.get(m.volume) ?? {}, DriverConfig: { Name: 'local' } },
    }));
  }

  /**
   * Where this start must go for its volumes. Throws a VolumeError when their node cannot take it. Holds the
   * other starts of its new volumes until `settle`.
   */
  async place(spec: ContainerSpec): Promise<VolumePlacement> {
    const vols = (spec.mounts ?? []).map((m) => ({ key: m.volume, name: this.labelsOf.get(m.volume)?.[NAME_LABEL] ?? m.volume }));
    if (!vols.length) return NOTHING;
    const unlock = await this.lockFirst(vols.map((v) => v.key));
    try {
      const { node, fresh } = await this.where(vols);
      if (!fresh.length) unlock();
      const settle = once(async (nodeId: string | undefined) => {
        try {
          if (!nodeId || !fresh.length) return;
          for (const v of fresh) await this.record(v, nodeId);
          const n = node ?? (await this.node(nodeId).catch(() => undefined));
          const where = n ? label(n, nodeId) : `node ${nodeId.slice(0, 12)}`;
          const old = vols.filter((v) => !fresh.includes(v));
          this.tell(spec, vols.map((v) => v.name), n?.Description.Hostname ?? nodeId, nodeId, old.length === 0
            ? `${list(fresh)} ${fresh.length > 1 ? 'are' : 'is'} new: Swarm placed the run on ${where}, where ${fresh.length > 1 ? 'they were' : 'it was'} made; later runs that use ${fresh.length > 1 ? 'them' : 'it'} go there`
            : `${list(old)} ${old.length > 1 ? 'are' : 'is'} on ${where}: the run is placed there, and ${list(fresh)} is made there`);
        } finally {
          unlock();
        }
      });
      if (!node) return { constraints: [], settle };
      if (!fresh.length) this.tell(spec, vols.map((v) => v.name), node.Description.Hostname, node.ID, `${list(vols)} ${vols.length > 1 ? 'are' : 'is'} on ${label(node, node.ID)}: the run is placed there`);
      return { constraints: [`node.id==${node.ID}`], settle };
    } catch (err) {
      unlock();
      throw err;
    }
  }

  /** The one node holding the recorded ones among these volumes (refused when it cannot run them), and the new ones. */
  private async where(vols: Array<{ key: string; name: string }>): Promise<{ node?: NodeLike; fresh: Array<{ key: string; name: string }> }> {
    const recs = await Promise.all(vols.map(async (v) => ({ v, rec: await this.recordOf(v.key) })));
    const fresh = recs.filter((r) => !r.rec).map((r) => r.v);
    const held = recs.filter((r) => r.rec);
    const ids = [...new Set(held.map((r) => r.rec!.nodeId))];
    if (ids.length === 0) return { fresh };
    if (ids.length > 1) {
      const parts = await Promise.all(ids.map(async (id) => `${list(held.filter((r) => r.rec!.nodeId === id).map((r) => r.v))} on ${await this.describe(id)}`));
      throw new VolumeError('volume_refused', `a run's volumes must be on one node, and ${parts.join(', ')}: mount them in separate runs`);
    }
    const node = await this.node(ids[0]).catch(() => undefined);
    const what = list(held.map((r) => r.v));
    const verb = held.length > 1 ? 'are' : 'is';
    if (!node) {
      throw new VolumeError('volume_refused', `${what} ${verb} on node ${ids[0].slice(0, 12)}, which left the Swarm: its data is on that machine. ` +
        'Join it again, or remove the volume (bytenite volume rm NAME) to start an empty one');
    }
    if (node.Status.State !== 'ready' || node.Spec.Availability !== 'active') {
      const down = node.Status.State !== 'ready' ? [node.Status.State] : [];
      if (node.Spec.Availability !== 'active') down.push(AWAY[node.Spec.Availability] ?? node.Spec.Availability);
      throw new VolumeError('volume_refused', `${what} ${verb} on ${label(node, node.ID)}, which is ${down.join(' and ')}: ` +
        'a volume stays on the node that made it, so the run can only go there. Bring that node back (docker node update --availability active), ' +
        'or use another volume; the agent never makes an empty one elsewhere');
    }
    return { node, fresh };
  }

  /** Waits until no other start is placing any of these volumes for the first time, then holds them. */
  private async lockFirst(keys: string[]): Promise<() => void> {
    for (;;) {
      const busy = keys.map((k) => this.placing.get(k)).filter((p): p is Promise<void> => Boolean(p));
      if (!busy.length) break;
      await Promise.all(busy);
    }
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    for (const k of keys) this.placing.set(k, held);
    return once(() => {
      for (const k of keys) if (this.placing.get(k) === held) this.placing.delete(k);
      release();
    });
  }

  private async record(v: { key: string; name: string }, nodeId: string): Promise<void> {
    const labels = { ...(this.labelsOf.get(v.key) ?? {}), [NODE_LABEL]: nodeId };
    try {
      await this.docker.createConfig({ Name: v.key, Labels: labels, Data: Buffer.from(nodeId).toString('base64') } as never);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
      const rec = await this.recordOf(v.key);
      if (rec && rec.nodeId !== nodeId) {
        throw new VolumeError('volume_refused', `volume ${v.name} was made on ${await this.describe(rec.nodeId)} meanwhile: run again to be placed there`);
      }
    }
  }

  private async recordOf(key: string): Promise<{ nodeId: string; configId: string; name: string } | undefined> {
    const c = (await this.configs([], key)).find((x) => x.Spec.Name === key);
    const nodeId = c?.Spec.Labels?.[NODE_LABEL];
    return c && nodeId ? { nodeId, configId: c.ID, name: c.Spec.Labels?.[NAME_LABEL] ?? key } : undefined;
  }

  private async configs(labels: string[], name?: string): Promise<ConfigInfo[]> {
    const filters: Record<string, string[]> = { label: [...labels, NODE_LABEL] };
    if (name) filters.name = [name];
    return (await this.docker.listConfigs({ filters } as never)) as unknown as ConfigInfo[];
  }

  private async node(id: string): Promise<NodeLike> {
    return (await this.docker.getNode(id).inspect()) as NodeLike;
  }

  private async describe(id: string): Promise<string> {
    const n = await this.node(id).catch(() => undefined);
    return n ? label(n, id) : `node ${id.slice(0, 12)}`;
  }

  private tell(spec: ContainerSpec, volumes: string[], node: string, nodeId: string, message: string): void {
    this.followers.get(spec.runId)?.({
      kind: 'placed', ...(spec.task === undefined ? {} : { task: spec.task }), volumes, node, nodeId, message,
    });
  }
}

/** A node as the user can find it: nodes of one machine share a hostname, so the id goes with it. */
function label(n: NodeLike, id: string): string {
  return `node ${n.Description.Hostname} (${id.slice(0, 12)})`;
}

function list(vols: Array<{ name: string }>): string {
  return vols.map((v) => `volume ${v.name}`).join(', ');
}

function once<A extends unknown[], R>(f: (...a: A) => R): (...a: A) => R {
  let done = false;
  let result: R;
  return (...a: A) => {
    if (!done) {
      done = true;
      result = f(...a);
    }
    return result;
  };
}
