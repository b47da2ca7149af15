/**
 * Whether a tunnel to PORT of a run's container (task K's, on a fan-out run) may open, and the connection to
 * it when it may. One set of checks for both ways in (the authenticated WebSocket, and the embedded agent's
 * own process): 404 for a run that is not the caller's tenant's (word for word the answer for a run that
 * does not exist), 409 for one not running yet, 410 for one that ended, 501 where the engine cannot reach
 * its containers, 502 when the container does not take the connection.
 */
import type { Duplex } from 'node:stream';
import type { RunManager } from '../runs/runManager';
import type { Run } from '../runs/run';
import type { PortTarget } from './runPorts';
import { TunnelRefused } from './tunnelRefused';

export interface Admitted {
  run: Run;
  target: PortTarget;
  /** The connection to the container's port, already made. */
  conn: Duplex;
}

/** The running container of a run's task that a client may reach, or the refusal that says why not. */
export function admitTarget(runs: RunManager, tenant: string, runId: string, task: number): { run: Run; target: PortTarget } {
  const run = runs.get(runId);
  if (!run || run.tenant !== tenant) throw new TunnelRefused(404, `no run ${runId} on this agent`);
  if (run.ports.ended) throw new TunnelRefused(410, `run ${runId} is over (${run.ports.ended}): its ports are closed`);
  const target = run.ports.target(task);
  if (!target && run.ports.unreachable) throw new TunnelRefused(501, run.ports.unreachable);
  if (!target) {
    if (run.state === 'running') {
      const parallel = run.spec.parallel ?? 1;
      if (task >= parallel) throw new TunnelRefused(404, `run ${runId} has no task ${task} (it has ${parallel})`);
      throw new TunnelRefused(409, `task ${task} of run ${runId} is not running`);
    }
    throw new TunnelRefused(409, `run ${runId} is ${run.state}: its ports can be reached once it runs`);
  }
  return { run, target };
}

export async function admitTunnel(runs: RunManager, tenant: string, runId: string, port: number, task: number): Promise<Admitted> {
  const { run, target } = admitTarget(runs, tenant, runId, task);
  try {
    return { run, target, conn: await target.dial(port) };
  } catch (err) {
    throw new TunnelRefused(502, `port ${port} of run ${runId}'s container did not take the connection: ${(err as Error).message}`);
  }
}
