/**
 * What differs when the "Docker Engine" is Podman's Docker-compatible service (`podman system service`).
 *
 * OOM kills: Podman 4.3 on cgroup v1 reports `State.OOMKilled: false` for a container the kernel killed at
 * its memory limit (exit 137). The limit holds (memory.limit_in_bytes and memory.memsw.limit_in_bytes are
 * the limit, there is no swap), and the container's own memory.oom_control counts the kill. conmon does get
 * the cgroup v1 OOM event, but writes its `oom` file relative to its working directory, which is wherever
 * `podman system service` was started (seen: an `oom` file in that folder after the first kill), not the
 * container's bundle folder where Podman looks for it. The cgroup is gone by the time the agent sees
 * the exit, so the agent asks the kernel's log instead: the kernel names
 * the memory cgroup of each OOM kill (`oom_memcg=/libpod_parent/libpod-<container id>`), which ties it to
 * exactly one container. That needs the engine on this machine and a readable kernel log (root, or
 * kernel.dmesg_restrict=0); otherwise the start-up line says OOM kills may go unreported.
 */
import { execFile } from 'node:child_process';
import type Docker from 'dockerode';

/** Podman's /version lists a component named "Podman Engine". */
export function isPodman(version: { Components?: Array<{ Name?: string }> | null }): boolean {
  return (version.Components ?? []).some((c) => c.Name === 'Podman Engine');
}

function kernelLog(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('dmesg', [], { timeout: 5000, maxBuffer: 16 * 1024 * 1024 }, (err, out) => resolve(err ? undefined : out));
  });
}

export class PodmanQuirks {
  /** Whether the kernel log can be read here, checked once. */
  private logReadable?: Promise<boolean>;

  constructor(private readonly local: boolean) {}

  /** True when the kernel log says this container's memory cgroup killed a process; false when it does not or cannot say. */
  async oomKilled(containerId: string, exitCode: number): Promise<boolean> {
    if (!this.local || exitCode !== 137) return false;
    // The kernel writes its lines as it kills; the exit the agent waited on comes after them.
    const log = await kernelLog();
    return log !== undefined && log.includes(`oom_memcg=`) && new RegExp(`oom_memcg=[^,\\s]*${containerId}`).test(log);
  }

  /** One line for the start-up log: how OOM kills are found on this Podman. */
  async oomNote(): Promise<string> {
    this.logReadable ??= this.local ? kernelLog().then((l) => l !== undefined) : Promise.resolve(false);
    if (await this.logReadable) return 'OOM kills: read from the kernel log (Podman does not report them on cgroup v1)';
    return 'OOM kills MAY GO UNREPORTED: Podman does not flag them on cgroup v1 and the agent cannot read the engine host\'s kernel log; an exit 137 may be the memory limit';
  }

  /**
   * Podman takes the tenant network's bridge name (bn-…) but maps "inter-container traffic off" to
   * netavark's `isolate`, which only keeps networks apart: runs of one tenant reach each other (seen: nc
   * from one container to another on the same network). Other tenants' runs stay unreachable.
   */
  static readonly networkNote = 'a network per tenant, kept apart from other tenants\' networks; on Podman runs of the SAME tenant CAN reach each other (netavark has no inter-container switch)';

  /** Podman's forwarded traffic goes through FORWARD (DOCKER-USER exists only where Docker is installed too). */
  static readonly firewallChains = ['FORWARD', 'INPUT'];

  /** Podman's API has no device requests (GPUs through CDI need `podman run --device nvidia.com/gpu=all`). */
  static readonly noGpu = 'GPU runs are not available on Podman through its Docker-compatible API (no device requests); use a Docker Engine with the NVIDIA Container Toolkit';
}

/** The engine's kind, asked once: Podman quirks, or undefined for a Docker Engine. */
export async function podmanQuirks(docker: Docker, local: boolean): Promise<PodmanQuirks | undefined> {
  const v = await docker.version();
  return isPodman(v as { Components?: Array<{ Name?: string }> }) ? new PodmanQuirks(local) : undefined;
}
