/**
 * The agent's end of an interactive run's stdin (`run -i`, `run -it`): `GET /stdin/RUN[?cols=C&rows=R]`, a
 * WebSocket upgrade authenticated like every other, carries keystrokes (or piped bytes) to the run's main
 * process. The framing is exec's (execServer.ts): binary frames from the client are stdin; text frames are
 * `{"resize":[COLS,ROWS]}` or `{"eof":true}`. The program's output does not travel here: it is the run's own
 * `log` events, on the client's run connection, like any run's. When the run ends the socket is closed (1000).
 * Several clients may be attached at once (a reattach before the old socket is seen gone); while none is,
 * the run's grace period runs. Nothing typed is logged.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { RunManager } from '../runs/runManager';
import type { Logger } from '../log';
import { refuseUpgrade } from '../tunnel/refuse';

const STDIN_PATH = /^\/stdin\/(r-[a-z0-9]{6,40})(?:\?(.*))?$/;

export function isStdinRequest(url: string | undefined): boolean {
  return Boolean(url?.startsWith('/stdin/'));
}

export interface StdinDeps {
  runs: RunManager;
  log: Logger;
  wss: WebSocketServer;
}

/** A `{"resize":[C,R]}` text frame's size, if that is what it is. */
export function resizeOf(msg: { resize?: unknown }): [number, number] | undefined {
  const r = msg.resize;
  return Array.isArray(r) && r.length === 2 && r.every((n) => Number.isInteger(n) && n >= 1 && n <= 1000) ? [r[0], r[1]] : undefined;
}

export function openStdin(req: http.IncomingMessage, socket: Duplex, head: Buffer, tenant: string, peer: string, deps: StdinDeps): void {
  const m = STDIN_PATH.exec(req.url ?? '');
  if (!m) return refuseUpgrade(socket, 400, 'an interactive run\'s stdin is asked for as /stdin/RUN_ID[?cols=C&rows=R]');
  const runId = m[1];
  const run = deps.runs.get(runId);
  // Another tenant's run is answered word for word as a run that does not exist.
  if (!run || run.tenant !== tenant) return refuseUpgrade(socket, 404, `no run ${runId} on this agent`);
  if (!run.spec.interactive) return refuseUpgrade(socket, 409, `run ${runId} was not started with -i: its program has no stdin to type into`);
  if (run.done) return refuseUpgrade(socket, 410, `run ${runId} is over (${run.state})`);
  const session = run.interactive;
  if (!session) return refuseUpgrade(socket, 409, `run ${runId} is ${run.state}: its stdin opens once it runs`);
  const q = new URLSearchParams(m[2] ?? '');
  const size = resizeOf({ resize: [Number(q.get('cols')), Number(q.get('rows'))] });
  deps.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
    const opened = Date.now();
    let over = false;
    const cut = (code: number, reason: string) => {
      if (over) return;
      over = true;
      detach();
      if (ws.readyState === ws.OPEN) ws.close(code, reason.slice(0, 120));
      deps.log.debug({ peer, runId, code, ms: Date.now() - opened }, 'stdin closed');
    };
    const detach = session.attach(cut);
    if (size && session.tty) void session.resize(size[0], size[1]).catch(() => {});
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        // Flow control: a program that reads slowly holds the client back, not the agent's memory.
        if (!session.write(data)) {
          ws.pause();
          session.drained(() => ws.resume());
        }
        return;
      }
      let msg: { resize?: unknown; eof?: unknown };
      try {
        msg = JSON.parse(data.toString('utf8'));
      } catch {
        return cut(1003, 'text frames are {"resize":[COLS,ROWS]} or {"eof":true}');
      }
      const resize = resizeOf(msg);
      if (resize) void session.resize(resize[0], resize[1]).catch(() => {});
      // With a terminal there is no end of input (Ctrl-D is a byte): one client's EOF must not close the
      // program's stdin for the next one to attach.
      else if (msg.eof === true && !session.tty) session.end();
    });
    ws.on('close', () => cut(1000, ''));
    ws.on('error', () => cut(1011, 'the client connection failed'));
  });
}
