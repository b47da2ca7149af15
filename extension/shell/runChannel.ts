/**
 * A terminal on a fresh container: an interactive run (`run -it`, agent/interactive/interactiveRun.ts) of a
 * shell. As with the CLI (agent/cli/interactiveRun.ts), keystrokes go over the run's `/stdin/RUN` socket
 * (agent/client/openStdin.ts, through AgentClient.stdin), opened once the run runs; the program's terminal
 * output is the run's own `log` events, and its exit is the run's final event. Until it runs, the build's
 * progress is told in the terminal. Closing the terminal stops the run: a shell nobody is at is only cost.
 */
import type WebSocket from 'ws';
import type { AgentClient } from '../../agent/client/agentClient';
import { TunnelRefused } from '../../agent/client/openTunnel';
import type { RunEvent } from '../../agent/protocol';
import type { Run } from '../runs/run';
import type { ShellChannel, ShellSink } from './shellChannel';

export interface RunChannelDeps {
  client: () => Promise<AgentClient>;
  stop(run: Run): Promise<void>;
  /** A line of ByteNite's own in the terminal (build progress). */
  say(line: string): void;
}

export function followRunChannel(run: Run, sink: ShellSink, deps: RunChannelDeps): ShellChannel {
  let ws: WebSocket | undefined;
  let opening = false;
  let over = false;
  let seen = 0;
  /** The latest size, sent when the socket opens (the run may have started at another). */
  let size: [number, number] | undefined;
  const queued: Buffer[] = [];

  const openStdin = async () => {
    opening = true;
    const client = await deps.client();
    // `running` can reach the client a moment before the agent has the program's stdin ready (409).
    for (let i = 0; ; i++) {
      try {
        ws = await client.stdin(run.runId, size ? { cols: size[0], rows: size[1] } : undefined);
        break;
      } catch (err) {
        if (!(err instanceof TunnelRefused) || err.status !== 409 || i >= 50 || over) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (over) return void ws.close(1000);
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      if (!over && code !== 1000 && !run.final) deps.say(`lost the connection to the run's stdin (${reason.toString() || `code ${code}`}); the run goes on`);
    });
    for (const b of queued.splice(0)) ws.send(b, { binary: true });
  };

  const onEvent = (e: RunEvent) => {
    switch (e.kind) {
      case 'building': return deps.say(`building: step ${e.step}/${e.steps}${e.cached ? ' (cached)' : ''} ${e.instruction.slice(0, 100)}`);
      case 'starting': return deps.say(`starting a container of the image (${e.start} start)`);
      case 'running':
        if (!opening) openStdin().catch((err: Error) => deps.say(`could not open the run's stdin: ${err.message}`));
        return;
      case 'log':
        if (e.stream !== 'build') sink.output(e.data);
        return;
      case 'idle': return deps.say(e.message);
      case 'exited': return finish(e.exitCode ?? undefined);
      case 'failed': return finish(undefined, `the run failed (${e.code}): ${e.message}`);
      case 'cancelled': return finish(undefined, 'the run was stopped');
    }
  };
  const finish = (code: number | undefined, message?: string) => {
    if (over) return;
    over = true;
    sub.dispose();
    if (ws && ws.readyState === ws.OPEN) ws.close(1000);
    sink.exit(code, message);
  };
  const catchUp = () => {
    for (const e of run.events) {
      if (e.seq <= seen) continue;
      seen = e.seq;
      onEvent(e.event as RunEvent);
      if (over) return;
    }
  };
  const sub = run.onDidChange(() => catchUp());
  catchUp();

  const send = (frame: string | Buffer, binary: boolean) => {
    if (ws && ws.readyState === ws.OPEN) ws.send(frame, { binary });
    else if (binary && !over) queued.push(frame as Buffer);
  };
  return {
    write: (data) => send(Buffer.from(data, 'utf8'), true),
    resize: (cols, rows) => {
      size = [cols, rows];
      if (ws) send(JSON.stringify({ resize: [cols, rows] }), false);
    },
    close: () => {
      if (over) return;
      over = true;
      sub.dispose();
      ws?.close(1000);
      void deps.stop(run).catch(() => {});
    },
  };
}
