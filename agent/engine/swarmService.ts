/**
 * An endpoint on the Swarm engine: one replicated Swarm service, scaled by its replica count, on an overlay
 * network of its own that only its tasks and one gateway container join.
 *
 * How the agent reaches the tasks: they run on any node, and the agent can reach no node's container
 * addresses, only the manager's API. Publishing the port (routing mesh or host mode) would open it on every
 * node (or a node's) interfaces to anyone, past the token check the agent makes. Instead the endpoint's
 * network is an attachable overlay, and a small gateway container on the manager joins it; a connection to
 * a task is `nc TASK_IP PORT` run by `docker exec` in the gateway (the agent's static busybox, as the relay
 * of agent/engine/containerDial.ts), carried by the exec's hijacked connection through the manager's API.
 * Nothing listens for the endpoint on any interface: only who can use the manager's API can reach a task,
 * which is the agent. The cost is one exec per new connection (keep-alive connections are reused).
 */
import type Docker from 'dockerode';
import type { Duplex } from 'node:stream';
import { createHash } from 'node:crypto';
import type { HardwareRequest, RunSpec } from '../protocol';
import { LABELS } from './engine';
import { TASK_CAP_DROP, refuse, taskResources } from './swarmNodes';
import { SHIM_PATH, findStaticBusybox } from './hotShim';
import { shimArchive } from './outputSkeleton';
import { relayThrough } from './containerDial';

const MiB = 1024 * 1024;
/** The label that tells an endpoint's service, network and gateway from a run's service. */
export const ENDPOINT_LABEL = 'io.bytenite.endpoint';

/** A task of the endpoint's service as the activator sees it. */
export interface ServiceTask {
  id: string;
  /** running, or a state before it (new … starting), or one after (failed, shutdown …). */
  state: string;
  /** Whether Swarm wants it running (false once a scale-down or an update picked it). */
  wanted: boolean;
  /** Its address on the endpoint's network, once it has one. */
  address?: string;
  /** When it reached its state. */
  since: Date;
  /** Swarm's reason, when it failed or waits. */
  error?: string;
}

/** What one endpoint's service is made of. */
export interface ServiceSpec {
  /** endpointKeyOf(tenant, name): the network and gateway are per endpoint, across redeploys. */
  endpointKey: string;
  /** A redeploy gets a new service beside the old one: this tells them apart. */
  version: string;
  endpoint: string;
  agentId: string;
  image: string;
  spec: RunSpec;
  port: number;
  pidsLimit?: number;
  /** The tasks may reach outside their network (the agent's --network setting for runs). */
  egress: boolean;
}

export class SwarmServices {
  constructor(
    private readonly docker: Docker,
    /** The registry reference (by digest) of an image on the manager, pushed first if it never was. */
    private readonly imageRef: (image: string) => Promise<string>,
  ) {}

  /**
   * Why no node of the Swarm could ever run one task of this endpoint, or undefined: said at deploy, as
   * Swarm would otherwise keep the task pending and every request would wait out the hold limit.
   */
  async refuse(spec: RunSpec): Promise<string | undefined> {
    const why = refuse((await this.docker.listNodes()) as Parameters<typeof refuse>[0], spec.hardware);
    return why && `an endpoint on this Swarm cannot start: ${why}`;
  }

  /** The service of this endpoint version, made (at 0 replicas) if it is not there; its id. */
  async ensure(s: ServiceSpec): Promise<string> {
    const name = serviceName(s.endpointKey, s.version);
    // The gateway too when the service exists (after a restart): it may have been removed or stopped.
    const network = await this.ensureNetwork(s);
    await this.ensureGateway(s, network);
    const existing = await this.find(name);
    if (existing) return existing;
    const ref = await this.imageRef(s.image);
    const created = await this.docker.createService(this.serviceSpec(s, name, ref, network) as unknown as Docker.CreateServiceOptions);
    return created.id;
  }

  private async find(name: string): Promise<string | undefined> {
    const list = await this.docker.listServices({ filters: { name: [name] } });
    return list.find((x) => x.Spec?.Name === name)?.ID;
  }

  /** The replicas Swarm is asked for now. */
  async replicas(serviceId: string): Promise<number> {
    const info = (await this.docker.getService(serviceId).inspect()) as { Spec: { Mode?: { Replicated?: { Replicas?: number } } } };
    return info.Spec.Mode?.Replicated?.Replicas ?? 0;
  }

  /** Asks Swarm for `n` replicas (re-read and retried when another update came between). */
  async scale(serviceId: string, n: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const service = this.docker.getService(serviceId);
      const info = (await service.inspect()) as { Version: { Index: number }; Spec: Record<string, unknown> };
      try {
        await service.update({ ...info.Spec, version: info.Version.Index, Mode: { Replicated: { Replicas: n } } });
        return;
      } catch (err) {
        // "update out of sequence": the version moved; read it again.
        if (attempt >= 3 || !/out of sequence/i.test((err as Error).message)) throw err;
      }
    }
  }

  /** The tasks of the service, newest first, with their address on the endpoint's network. */
  async tasks(serviceId: string, endpointKey: string): Promise<ServiceTask[]> {
    const network = networkName(endpointKey);
    const list = (await this.docker.listTasks({ filters: { service: [serviceId] } })) as Array<{
      ID: string; DesiredState?: string;
      Status: { Timestamp: string; State: string; Err?: string; Message?: string };
      NetworksAttachments?: Array<{ Network?: { Spec?: { Name?: string } }; Addresses?: string[] }>;
    }>;
    return list.map((t) => {
      const att = t.NetworksAttachments?.find((a) => a.Network?.Spec?.Name === network);
      return {
        id: t.ID, state: t.Status.State, wanted: t.DesiredState === 'running', since: new Date(t.Status.Timestamp),
        address: att?.Addresses?.[0]?.split('/')[0], error: t.Status.Err,
      };
    }).sort((a, b) => b.since.getTime() - a.since.getTime());
  }

  /** A connection to `address:port` on the endpoint's network, through its gateway. */
  dial(endpointKey: string, address: string, port: number): Promise<Duplex> {
    return relayThrough(this.docker.getContainer(gatewayName(endpointKey)), address, port);
  }

  /** Removes one version's service (its tasks stop: SIGTERM, grace, SIGKILL). */
  async remove(serviceId: string): Promise<void> {
    await this.docker.getService(serviceId).remove().catch(ignore404);
  }

  /** Removes the endpoint's gateway and network once no version of it is left. */
  async removeEndpoint(endpointKey: string): Promise<void> {
    // The network goes once the tasks have left it, which takes Swarm a moment after the service went.
    for (let i = 0; i < 40; i++) {
      // A service of the endpoint is back (deployed again under the same name): its gateway and network stay.
      const services = await this.docker.listServices({ filters: { label: [`${ENDPOINT_LABEL}=${endpointKey}`] } });
      if (services.length) return;
      const gateway = this.docker.getContainer(gatewayName(endpointKey));
      await gateway.remove({ force: true }).catch(ignore404);
      try {
        await this.docker.getNetwork(networkName(endpointKey)).remove();
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
      }
      // Once more: a removal the engine had not finished the first time is not left behind.
      await gateway.remove({ force: true }).catch(ignore404);
      return;
    }
  }

  /**
   * Services, gateways and networks of this agent's endpoints not in `keep` (endpoint keys), left by an
   * agent that was stopped or lost its data folder.
   */
  async removeOthers(agentId: string, keep: ReadonlySet<string>, keepServices: ReadonlySet<string>): Promise<number> {
    const label = [`${LABELS.agent}=${agentId}`, ENDPOINT_LABEL];
    let removed = 0;
    for (const s of await this.docker.listServices({ filters: { label } })) {
      if (keepServices.has(s.Spec?.Name ?? '')) continue;
      await this.remove(s.ID!);
      removed++;
    }
    for (const n of await this.docker.listNetworks({ filters: { label } })) {
      const key = n.Labels?.[ENDPOINT_LABEL];
      if (key && !keep.has(key)) await this.removeEndpoint(key);
    }
    return removed;
  }

  private async ensureNetwork(s: ServiceSpec): Promise<string> {
    const name = networkName(s.endpointKey);
    const list = await this.docker.listNetworks({ filters: { name: [name] } });
    if (list.some((n) => n.Name === name)) return name;
    await this.docker.createNetwork({
      Name: name, Driver: 'overlay', Attachable: true, CheckDuplicate: true,
      // Without egress the tasks reach nothing but each other and the gateway.
      Internal: !s.egress,
      Labels: { [LABELS.managed]: '1', [LABELS.agent]: s.agentId, [ENDPOINT_LABEL]: s.endpointKey },
    }).catch((err) => {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
    });
    return name;
  }

  /**
   * The gateway: a container of the endpoint's own image (it is on the manager: it was built there) that
   * only sleeps, with the static busybox copied in for `nc`. No capabilities but what nc needs, no ports,
   * small limits: it holds nothing and serves nothing by itself.
   */
  private async ensureGateway(s: ServiceSpec, network: string): Promise<void> {
    const name = gatewayName(s.endpointKey);
    const c = this.docker.getContainer(name);
    const state = await c.inspect().then((i) => i.State, (err) => {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    });
    if (state?.Running) return;
    if (!state) {
      const busybox = findStaticBusybox();
      if (!busybox) throw new Error('an endpoint on the Swarm engine needs a static busybox on the agent\'s host for its gateway (Debian: apt install busybox-static)');
      await this.docker.createContainer({
        name, Image: s.image, Entrypoint: [SHIM_PATH, 'sleep', '2147483647'], Cmd: [], User: '0',
        Labels: { [LABELS.managed]: '1', [LABELS.agent]: s.agentId, [ENDPOINT_LABEL]: s.endpointKey },
        HostConfig: {
          NetworkMode: network, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], ReadonlyRootfs: false,
          Memory: 64 * MiB, NanoCpus: 0.25e9, PidsLimit: 256, RestartPolicy: { Name: 'unless-stopped' },
        },
      });
      await c.putArchive(shimArchive(busybox), { path: '/' });
    }
    await c.start().catch((err) => {
      if ((err as { statusCode?: number }).statusCode !== 304) throw err;
    });
  }

  private serviceSpec(s: ServiceSpec, name: string, image: string, network: string): object {
    const hw: HardwareRequest = s.spec.hardware;
    const labels = { [LABELS.managed]: '1', [LABELS.agent]: s.agentId, [ENDPOINT_LABEL]: s.endpointKey };
    return {
      Name: name,
      Labels: labels,
      TaskTemplate: {
        ContainerSpec: {
          Image: image,
          Args: s.spec.command,
          ...(s.spec.user ? { User: s.spec.user } : {}),
          Env: Object.entries({ BYTENITE_ENDPOINT: s.endpoint, ...s.spec.env }).map(([k, v]) => `${k}=${v}`),
          Labels: labels,
          CapabilityDrop: TASK_CAP_DROP,
          StopGracePeriod: 10e9,
        },
        Resources: taskResources(hw, s.pidsLimit),
        // A task that exits is replaced by Swarm: the next request is served by a new one.
        RestartPolicy: { Condition: 'any', Delay: 1e9 },
        Networks: [{ Target: network }],
      },
      Mode: { Replicated: { Replicas: 0 } },
    };
  }
}

function ignore404(err: unknown): void {
  if ((err as { statusCode?: number }).statusCode !== 404) throw err;
}

/** The key of a tenant's endpoint in Swarm names and labels (a hash: a tenant's name is not shown there). */
export function endpointKeyOf(tenant: string, name: string): string {
  return createHash('sha256').update(`${tenant}\0${name}`).digest('hex').slice(0, 12);
}

export function serviceName(endpointKey: string, version: string): string {
  return `bytenite-ep-${endpointKey}-${version}`;
}

function networkName(endpointKey: string): string {
  return `bytenite-ep-${endpointKey}`;
}

function gatewayName(endpointKey: string): string {
  return `bytenite-ep-${endpointKey}-gw`;
}
