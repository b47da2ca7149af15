/**
 * A tunnel for the agent's own process: the embedded agent's CLI forwards `-p` connections here, straight
 * to the container's connection, with no WebSocket between two ends of the same process. The checks are
 * the WebSocket's (admitTunnel); the run ending cuts it the same way. Measured with `BENCH_ONLY=ports npm
 * run bench` (see the commit that added it): the WebSocket's framing and the loopback hop were most of the
 * forward's cost.
 */
import type { Duplex } from 'node:stream';
import type { RunManager } from '../runs/runManager';
import { admitTunnel } from './admitTunnel';

export async function dialRun(runs: RunManager, tenant: string, runId: string, port: number, task = 0): Promise<Duplex> {
  const { run, target, conn } = await admitTunnel(runs, tenant, runId, port, task);
  if (run.ports.target(task) !== target) {
    conn.destroy();
    throw new Error(run.ports.ended ?? 'the container stopped');
  }
  const untrack = run.ports.track(task, () => conn.destroy());
  conn.once('close', untrack);
  return conn;
}
