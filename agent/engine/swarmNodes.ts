/**
 * What a Swarm task asks of a node and what the nodes offer: reservations and limits from the hardware (GPUs as
 * generic resources named `gpu-TYPE`), and why no node of a cluster could ever hold a request.
 */
import type { HardwareRequest } from '../protocol';
import { reservedMiB } from '../hardware/catalog';

const MiB = 1024 * 1024;

export interface SwarmNode {
  ID: string;
  Spec: { Role: string; Availability: string };
  Description: {
    Hostname: string;
    Resources: { NanoCPUs: number; MemoryBytes: number; GenericResources?: GenericResource[] };
  };
  Status: { State: string; Addr?: string; Message?: string };
  ManagerStatus?: { Leader?: boolean; Addr?: string };
}

type GenericResource = { DiscreteResourceSpec?: { Kind: string; Value: number }; NamedResourceSpec?: { Kind: string; Value: string } };

/** A generic resource kind that names a GPU type: `gpu-h100` offers (and asks for) h100 GPUs. */
const GPU_KIND = /^gpu-([a-z0-9][a-z0-9._-]*)$/i;
export const gpuKind = (type: string) => `gpu-${type}`;

/** The capabilities a task drops, as the Docker engine's containers do (agent/engine/createOptions.ts). */
export const TASK_CAP_DROP = ['CAP_NET_RAW', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SYS_CHROOT'];

/** A task's reservations and limits: the scheduler places it by what it reserves, the engine holds it to the limits. */
export function taskResources(hw: HardwareRequest, pidsLimit: number | undefined) {
  const resources = { NanoCPUs: Math.round(hw.cpus * 1e9), MemoryBytes: hw.memoryMiB * MiB };
  return {
    Reservations: {
      ...resources,
      GenericResources: hw.gpu ? [{ DiscreteResourceSpec: { Kind: gpuKind(hw.gpu.type), Value: hw.gpu.count } }] : undefined,
    },
    Limits: { ...resources, Pids: pidsLimit },
  };
}

export function schedulable(n: SwarmNode): boolean {
  return n.Status.State === 'ready' && n.Spec.Availability === 'active';
}

export function nodeSize(n: SwarmNode): { cpus: number; memoryMiB: number; gpus: Record<string, number> } {
  const gpus: Record<string, number> = {};
  for (const g of n.Description.Resources.GenericResources ?? []) {
    const kind = g.DiscreteResourceSpec?.Kind ?? g.NamedResourceSpec?.Kind ?? '';
    const m = GPU_KIND.exec(kind);
    if (!m) continue;
    const type = m[1].toLowerCase();
    gpus[type] = (gpus[type] ?? 0) + (g.DiscreteResourceSpec ? g.DiscreteResourceSpec.Value : 1);
  }
  return { cpus: n.Description.Resources.NanoCPUs / 1e9, memoryMiB: Math.floor(n.Description.Resources.MemoryBytes / MiB), gpus };
}

/**
 * Why no node of the cluster could ever hold this request, or undefined when one could (it may still have
 * to wait for that node to have room: Swarm then keeps the task pending and says why).
 */
export function refuse(nodes: SwarmNode[], hw: HardwareRequest): string | undefined {
  const usable = nodes.filter(schedulable);
  if (usable.length === 0) return 'the Swarm has no node that is ready and active';
  const fits = usable.some((n) => {
    const s = nodeSize(n);
    const gpuOk = !hw.gpu || (s.gpus[hw.gpu.type] ?? 0) >= hw.gpu.count;
    return s.cpus + 1e-9 >= hw.cpus && s.memoryMiB - reservedMiB(s.memoryMiB) >= hw.memoryMiB && gpuOk;
  });
  if (fits) return undefined;
  const sizes = usable.map((n) => {
    const s = nodeSize(n);
    const g = Object.entries(s.gpus).map(([t, c]) => `, ${c}x ${t}`).join('');
    return `${n.Description.Hostname} ${s.cpus} vCPUs, ${Math.floor(s.memoryMiB - reservedMiB(s.memoryMiB))} MiB usable${g}`;
  });
  const gpu = hw.gpu ? `, ${hw.gpu.count}x ${hw.gpu.type}` : '';
  return `no node of the Swarm can hold ${hw.cpus} vCPUs, ${hw.memoryMiB} MiB${gpu} (nodes: ${sizes.join('; ')}); ask for less`;
}
