/**
 * A run's forwards on this machine: the listeners of `-p` (agent/client/portForward.ts), opened before the
 * run starts and closed with its final event, whatever the panels do. A local port already taken falls back
 * to a free one rather than failing the run (said in the log). Each tunnel is opened through the agent's
 * current connection, so forwards keep working across a reconnect.
 */
import type { Publish } from '../../agent/cli/publishFlag';
import { forwardUrl } from '../../agent/cli/publishFlag';
import { PortForwards } from '../../agent/client/portForward';
import type { RunEvent } from '../../agent/protocol';
import type { PortView } from '../../webview/protocol';
import type { AgentConnection } from '../agents/agentConnection';
import type { Log } from '../log';

export class LocalPorts {
  private constructor(private readonly forwards: PortForwards, readonly views: PortView[]) {}

  static async open(publishes: Publish[], conn: AgentConnection, log: Log, onChange: (views: PortView[]) => void): Promise<LocalPorts> {
    const bound: Publish[] = [];
    for (const p of publishes) bound.push(await freeOr(p, log));
    let self: LocalPorts | undefined;
    const pf = await PortForwards.listen(bound, {
      tunnel: async (runId, port, task) => (await conn.get(10_000)).tunnel(runId, port, task),
      // Raw TCP where the agent offers it (the local agent does): no WebSocket framing on the editor's forwards.
      dial: async (runId, port, task) => (await conn.get(10_000)).dialTunnel(runId, port, task),
      onReady: (f, ms) => {
        const v = self?.views.find((x) => x.containerPort === f.containerPort);
        if (!v || !self) return;
        v.state = 'ready';
        v.readyMs = ms;
        onChange(self.views);
      },
      onNote: (line) => log.warn(`forward ${line}`),
    });
    self = new LocalPorts(pf, pf.forwards.map((f) => ({
      containerPort: f.containerPort, url: forwardUrl(f.host, f.boundPort), state: 'waiting' as const,
    })));
    const close = pf.close.bind(pf);
    pf.close = (why: string) => {
      close(why);
      for (const v of self!.views) v.state = 'closed';
      onChange(self!.views);
    };
    return self;
  }

  setRun(runId: string): void {
    this.forwards.setRun(runId);
  }

  event(e: RunEvent): void {
    this.forwards.event(e);
  }

  close(why: string): void {
    this.forwards.close(why);
  }
}

/** The asked local port if it can be had now, else the same forward on a free port. */
async function freeOr(p: Publish, log: Log): Promise<Publish> {
  if (p.localPort === 0) return p;
  const net = await import('node:net');
  const free = await new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(p.localPort, p.host, () => s.close(() => resolve(true)));
  });
  if (free) return p;
  log.warn(`forward: ${p.host}:${p.localPort} is in use on this machine; container port ${p.containerPort} goes to a free port instead`);
  return { ...p, localPort: 0 };
}
