/**
 * What the endpoints and the router need of an endpoint's activator, whichever engine runs its instances:
 * agent/endpoints/activator.ts (each instance a run on a Docker engine) or agent/endpoints/swarmActivator.ts
 * (the instances are the tasks of one replicated Swarm service).
 */
import type { EndpointSummary } from '../protocol';
import type { Run } from '../runs/run';
import type { Slot } from './activator';
import type { EndpointDefinition } from './definitionStore';

export interface EndpointActivator {
  readonly def: EndpointDefinition;
  /** A slot on an instance for one request: at once, or once one is free or started (Refusal otherwise). */
  acquire(signal?: AbortSignal): Promise<Slot>;
  /** Brings the endpoint up to its `min` (at deploy and after a restart). */
  ensureMin(): void;
  /** Takes up instances a previous agent process left running (runs the run manager recovered). */
  adopt(runs: Run[]): void;
  /** Whether an instance is ready to take a request now. */
  hasReady(): boolean;
  /** A redeploy: `old` answers until this one has an instance ready, then `retire` is called. */
  takeOver(old: EndpointActivator, retire: () => void): void;
  /** No new requests (they go to `next`, or get 404); the instances stop once what they hold is done. */
  retire(next?: EndpointActivator): void;
  /** Ids of the instances not yet ended (kept with the definition). */
  instanceRuns(): string[];
  summary(): Pick<EndpointSummary, 'instances' | 'queued'>;
  /** The agent is stopping: held requests get 503. */
  close(): void | Promise<void>;
}

/** The ready instance with the fewest requests in flight that can take one more, if any. */
export function leastBusy<T extends { state: string; inFlight: number }>(instances: Iterable<T>, concurrency: number): T | undefined {
  let best: T | undefined;
  for (const i of instances) {
    if (i.state !== 'ready' || i.inFlight >= concurrency) continue;
    if (!best || i.inFlight < best.inFlight) best = i;
  }
  return best;
}
