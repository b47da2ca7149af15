/**
 * What a run's container is created with: its image and command, its environment and labels, and the limits
 * every container gets (CPU, memory with no swap beyond it, pids, no new privileges, dropped capabilities,
 * named volumes only, never a host path).
 */
import type Docker from 'dockerode';
import { type ContainerSpec, containerLabels } from './engine';
import { interactiveCreateOptions } from '../interactive/containerStdin';

const MiB = 1024 * 1024;

export function createOptions(spec: ContainerSpec, env: Record<string, string>, networkMode: string): Docker.ContainerCreateOptions {
  const hw = spec.hardware;
  const memory = hw.memoryMiB * MiB;
  return {
    Image: spec.image,
    Cmd: spec.command,
    ...(spec.user ? { User: spec.user } : {}),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: containerLabels(spec),
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    OpenStdin: false,
    ...(spec.interactive ? interactiveCreateOptions(spec.interactive.tty) : {}),
    HostConfig: {
      NanoCpus: Math.round(hw.cpus * 1e9),
      Memory: memory,
      MemorySwap: memory, // no swap beyond the limit: an over-allocation is an OOM kill, not a slow crawl
      PidsLimit: spec.pidsLimit,
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['NET_RAW', 'MKNOD', 'AUDIT_WRITE', 'SYS_CHROOT'],
      NetworkMode: networkMode,
      Binds: [],
      // Named volumes only (agent/volumes/): a host path is never mounted.
      Mounts: (spec.mounts ?? []).map((m) => ({ Type: 'volume' as const, Source: m.volume, Target: m.target, ReadOnly: m.readOnly })),
      DeviceRequests: hw.gpu ? [{ Driver: 'nvidia', Count: hw.gpu.count, Capabilities: [['gpu']] }] : undefined,
    },
  };
}
