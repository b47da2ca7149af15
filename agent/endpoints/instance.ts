/**
 * One instance of an endpoint (a run of its image) as the activators see it: its state, the requests it has in
 * flight, its wake, and a keep-alive pool of connections to its port; and the slot a request holds on it.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { StartKind } from '../protocol';
import type { Run } from '../runs/run';
import type { PortTarget } from '../tunnel/runPorts';
import { socketLike } from './relayProbe';

export interface WakeTiming {
  start: StartKind;
  admitMs: number;
  startMs: number;
  readyMs: number;
}

/** A request's place on an instance; `release` gives it back (once). */
export interface Slot {
  instance: Instance;
  /** The wake of the instance, for the one request that woke it. */
  wake?: WakeTiming;
  release(): void;
}

type InstanceState = 'starting' | 'ready' | 'stopping';

export class Instance {
  state: InstanceState = 'starting';
  inFlight = 0;
  run?: Run;
  target?: PortTarget;
  start?: StartKind;
  startedAt?: Date;
  /** How its start went, until a request takes it. */
  wake?: WakeTiming;
  /** Its final cost was passed on (see Activator.settle). */
  settled = false;
  /** Why it is gone, once it is: a request it held is answered 502 with this. */
  gone?: string;
  /** Resolves once its run has ended. */
  readonly ended: Promise<void>;
  private endedResolve!: () => void;
  idleTimer?: NodeJS.Timeout;
  /** Keep-alive connections to its port, reused across requests. */
  readonly agent: http.Agent;

  constructor(port: number) {
    this.ended = new Promise((r) => (this.endedResolve = r));
    const self = this;
    // Connections are made by the engine's dialer (the container's address, or a relay where that cannot
    // be reached), so the pool of keep-alive sockets is per instance and dies with it.
    this.agent = new (class extends http.Agent {
      createConnection(_opts: unknown, cb: (err: Error | null, s?: Duplex) => void): undefined {
        const target = self.target;
        if (!target) {
          cb(new Error(self.gone ?? 'the instance is not running'));
          return undefined;
        }
        target.dial(port).then((s) => cb(null, socketLike(s)), (err: Error) => cb(err));
        return undefined;
      }
    })({ keepAlive: true, maxSockets: Infinity, keepAliveMsecs: 30_000 });
  }

  /** One more request on this instance. Its slot carries the wake, so only the request that woke the instance
   * reports it; `onRelease` runs once the count is down again, however often the slot is released. */
  take(onRelease: () => void): Slot {
    this.inFlight++;
    const wake = this.wake;
    this.wake = undefined;
    let released = false;
    return {
      instance: this, wake,
      release: () => {
        if (released) return;
        released = true;
        this.inFlight--;
        onRelease();
      },
    };
  }

  get runId(): string | undefined {
    return this.run?.id;
  }

  markEnded(why: string): void {
    this.gone ??= why;
    this.agent.destroy();
    this.endedResolve();
  }
}
