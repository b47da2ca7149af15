/**
 * `docker run --rm` as the agent would have the engine run the container, for the warm start's floor: on a
 * user-defined bridge made with the options of the agent's per-tenant networks (inter-container traffic off,
 * a `bn-` bridge, so the agent's firewall rule for its bridges applies to it too where the agent added it),
 * with the limits the agent's create request carries. The flags come from agent/engine/createOptions.ts
 * itself, so the floor follows the agent when its limits change, and a limit the CLI has no flag for here
 * stops the benchmark rather than going unmeasured.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createOptions } from '../agent/engine/createOptions';
import type { HardwareRequest } from '../agent/protocol';
import { BRIDGE_PREFIX } from '../agent/network/tenantNetworks';
import { BENCH_ID, BENCH_LABEL, DOCKER, onCleanup } from './lib';

/** The agent's default (server.ts: `pidsLimit ?? 1024`): the bench's agents run without --pids-limit. */
const AGENT_PIDS_LIMIT = 1024;

/** Makes a network like TenantNetworks.ensure makes one; it is removed when the suite ends. */
export function makeTenantLikeNetwork(): string {
  const name = `bytenite-bench-${BENCH_ID}`;
  const bridge = `${BRIDGE_PREFIX}${randomBytes(6).toString('hex')}`;
  execFileSync(DOCKER, [
    'network', 'create', '--driver', 'bridge', '--label', BENCH_LABEL,
    '--opt', 'com.docker.network.bridge.enable_icc=false', '--opt', `com.docker.network.bridge.name=${bridge}`, name,
  ], { stdio: 'ignore' });
  onCleanup(() => execFileSync(DOCKER, ['network', 'rm', name], { stdio: 'ignore' }));
  return name;
}

/** The `docker run` flags for the HostConfig the agent sends for a run of `hardware` on `network`. */
export function agentLimitFlags(hardware: HardwareRequest, network: string): string[] {
  const spec = { runId: 'bench', agentId: 'bench', image: 'bench', env: {}, hardware, outputDir: '/outputs', pidsLimit: AGENT_PIDS_LIMIT, network: true };
  const { HostConfig: h = {} } = createOptions(spec, {}, network);
  const flags: string[] = [];
  for (const [key, value] of Object.entries(h)) {
    if (value === undefined) continue;
    const list = value as string[];
    switch (key) {
      case 'NanoCpus': flags.push('--cpus', String((value as number) / 1e9)); break;
      case 'Memory': flags.push('--memory', `${value}b`); break;
      case 'MemorySwap': flags.push('--memory-swap', `${value}b`); break;
      case 'PidsLimit': flags.push('--pids-limit', String(value)); break;
      case 'Privileged': if (value) flags.push('--privileged'); break;
      case 'SecurityOpt': for (const o of list) flags.push('--security-opt', o); break;
      case 'CapDrop': for (const c of list) flags.push('--cap-drop', c); break;
      case 'NetworkMode': flags.push('--network', String(value)); break;
      // Host paths and volumes: none for this run (the agent mounts named volumes only when asked).
      case 'Binds': case 'Mounts': if (list.length) throw new Error(`the floor has no ${key} to give`); break;
      default: throw new Error(`agent/engine/createOptions.ts sets HostConfig.${key}: add its docker run flag to bench/agentLikeDockerRun.ts`);
    }
  }
  return flags;
}
