/**
 * Keeps runs from reaching each other. On Docker's default bridge every container can open a connection
 * to every other one: one run could read another's inference server, past every token. Instead each
 * tenant's containers go on a bridge network of their own, made with inter-container traffic off, so a
 * container reaches neither another tenant's containers (Docker drops traffic between bridges) nor its
 * own tenant's other runs (no traffic within the bridge either). Outbound access is as on the default
 * bridge: builds and jobs still download packages. The agent, on the host, still reaches every container,
 * which is how port forwards get in.
 *
 * One network per tenant rather than per run: a network costs about 0.2 s to make here, which would sit on
 * every warm start's path, and Docker's default address pools hold only about thirty of them.
 */
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { LABELS } from '../engine/engine';

/** Bridges the agent makes are named `bn-` + 12 hex digits (at most 15 characters, the kernel's limit). */
export const BRIDGE_PREFIX = 'bn-';

const TENANT_LABEL = 'io.bytenite.tenant';

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function networkName(agentId: string, tenant: string): string {
  return `bytenite-${agentId.slice(0, 8)}-${hash(`${agentId}\0${tenant}`).slice(0, 12)}`;
}

export class TenantNetworks {
  private readonly made = new Map<string, Promise<string>>();
  /** The network name each key of `made` stands for, known without waiting on the promise. */
  private readonly nameOf = new Map<string, string>();

  constructor(private readonly docker: Docker) {}

  /** The name of the network for `tenant`'s containers, made if it is not there. */
  networkFor(agentId: string, tenant: string): Promise<string> {
    const key = `${agentId}\0${tenant}`;
    let name = this.made.get(key);
    if (!name) {
      name = this.ensure(agentId, tenant);
      this.made.set(key, name);
      this.nameOf.set(key, networkName(agentId, tenant));
      name.catch(() => this.made.delete(key)); // tried again by the next run
    }
    return name;
  }

  private async ensure(agentId: string, tenant: string): Promise<string> {
    const h = hash(`${agentId}\0${tenant}`);
    const name = networkName(agentId, tenant);
    try {
      await this.docker.getNetwork(name).inspect();
      return name;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    const create = () => this.docker.createNetwork({
      Name: name, Driver: 'bridge', CheckDuplicate: true,
      Labels: { [LABELS.managed]: '1', [LABELS.agent]: agentId, [TENANT_LABEL]: hash(tenant).slice(0, 16) },
      Options: { 'com.docker.network.bridge.enable_icc': 'false', 'com.docker.network.bridge.name': `${BRIDGE_PREFIX}${h.slice(0, 12)}` },
    });
    const message = (err: unknown) => (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
    try {
      try {
        await create();
      } catch (err) {
        // The engine's address pools are used up, often by networks of agents that were killed (and so never
        // removed them): those no container is on go, and the network is made again.
        if (!/non-overlapping IPv4 address pool|address pools have been fully subnetted/i.test(message(err))) throw err;
        const freed = await this.removeIdle();
        if (freed === 0) throw err;
        await create();
      }
    } catch (err) {
      // Made meanwhile by another start: that one is as good.
      if ((err as { statusCode?: number }).statusCode !== 409) throw new Error(`could not make the run network ${name}: ${message(err)}`);
    }
    return name;
  }

  /**
   * Removes every agent's run networks that no container is on. Another agent that is running makes its
   * own again at its next start (a start retries once on a network that went missing).
   */
  private async removeIdle(): Promise<number> {
    const list = await this.docker.listNetworks({ filters: { label: [`${LABELS.managed}=1`] } });
    let removed = 0;
    for (const n of list) {
      if (!n.Name.startsWith('bytenite-')) continue;
      const info = await this.docker.getNetwork(n.Id).inspect().catch(() => undefined);
      if (!info || Object.keys(info.Containers ?? {}).length > 0) continue;
      this.forget(n.Name);
      await this.docker.getNetwork(n.Id).remove().then(() => removed++, () => {});
    }
    return removed;
  }

  /** Forgets that network `name` was made, so the next run's start looks for it (and makes it) again. */
  forget(name: string): void {
    for (const [key, forName] of this.nameOf) if (forName === name) this.made.delete(key);
  }

  /** Removes this agent's networks that no container is on (all of them when the agent stops). Returns how many. */
  async removeUnused(agentId: string): Promise<number> {
    const list = await this.docker.listNetworks({ filters: { label: [`${LABELS.agent}=${agentId}`] } });
    let removed = 0;
    for (const n of list) {
      const info = await this.docker.getNetwork(n.Id).inspect().catch(() => undefined);
      if (!info || Object.keys(info.Containers ?? {}).length > 0) continue;
      // Forgotten before it goes: a start from now on makes it again rather than naming a removed network.
      this.forget(n.Name);
      await this.docker.getNetwork(n.Id).remove().then(() => removed++, () => {});
    }
    return removed;
  }
}
