/**
 * The agent's end of `bytenite exec`: `GET /exec/RUN?cmd=…[&tty=1][&stdin=1][&cols=C&rows=R][&task=K]`, a
 * WebSocket upgrade authenticated like every other, starts a command in the run's running container and
 * carries its terminal. Checked before the upgrade as tunnels are (admitTarget: 404 word for word for
 * another tenant's run, 409 not running, 410 over), so a refusal is a plain HTTP status with its reason.
 *
 * On the WebSocket: binary frames from the client are stdin; text frames are `{"resize":[COLS,ROWS]}` or
 * `{"eof":true}` (stdin ended). From the agent, binary frames carry output with its stream in the first byte
 * (1 stdout, 2 stderr; a TTY has only 1), then one text frame `{"exit":CODE}` before a 1000 close. When the
 * run ends, the session is cut (close 4001 with the reason). Nothing typed or printed is logged.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { RunManager } from '../runs/runManager';
import type { Logger } from '../log';
import { admitTarget } from '../tunnel/admitTunnel';
import { refuseUpgrade } from '../tunnel/refuse';
import { TunnelRefused } from '../tunnel/tunnelRefused';
import { FrameSplitter } from '../engine/dockerStream';
import type { ExecRequest } from './containerExec';

const EXEC_PATH = /^\/exec\/(r-[a-z0-9]{6,40})\?(.*)$/;
/** Output sent but not yet written to the client's socket past which the command's output is not read. */
const HIGH_WATER = 1024 * 1024;

export function isExecRequest(url: string | undefined): boolean {
  return Boolean(url?.startsWith('/exec/'));
}

export interface ExecDeps {
  runs: RunManager;
  log: Logger;
  wss: WebSocketServer;
}


/** The exec asked for in the query, checked; a string is what is wrong with it. */
export function parseExecQuery(query: string): (ExecRequest & { task: number }) | string {
  const q = new URLSearchParams(query);
  let cmd: unknown;
  try {
    cmd = JSON.parse(Buffer.from(q.get('cmd') ?? '', 'base64url').toString('utf8'));
  } catch {
    return 'cmd must be a JSON array of strings, base64url-encoded';
  }
  if (!Array.isArray(cmd) || cmd.length < 1 || cmd.length > 256 || !cmd.every((a) => typeof a === 'string' && a.length <= 65536) || !cmd[0]) {
    return 'cmd must be a JSON array of 1 to 256 strings (the program first), base64url-encoded';
  }
  const size = (name: string): number | undefined | string => {
    const v = q.get(name);
    if (v === null) return undefined;
    const n = Number(v);
    return /^\d{1,4}$/.test(v) && n >= 1 && n <= 1000 ? n : `${name} must be a whole number from 1 to 1000`;
  };
  const cols = size('cols');
  const rows = size('rows');
  if (typeof cols === 'string') return cols;
  if (typeof rows === 'string') return rows;
  const task = q.get('task') === null ? 0 : Number(q.get('task'));
  if (!Number.isInteger(task) || task < 0 || task > 255) return 'task must be a task index of the run';
  return { cmd: cmd as string[], tty: q.get('tty') === '1', stdin: q.get('stdin') === '1', cols, rows, task };
}

export async function openExec(req: http.IncomingMessage, socket: Duplex, head: Buffer, tenant: string, peer: string, deps: ExecDeps): Promise<void> {
  const m = EXEC_PATH.exec(req.url ?? '');
  if (!m) return refuseUpgrade(socket, 400, 'an exec is asked for as /exec/RUN_ID?cmd=BASE64URL_JSON_ARRAY[&tty=1][&stdin=1][&cols=C&rows=R][&task=K]');
  const parsed = parseExecQuery(m[2]);
  if (typeof parsed === 'string') return refuseUpgrade(socket, 400, parsed);
  const runId = m[1];
  let admitted;
  try {
    admitted = admitTarget(deps.runs, tenant, runId, parsed.task);
  } catch (err) {
    if (err instanceof TunnelRefused) return refuseUpgrade(socket, err.status, err.message);
    throw err;
  }
  const { run, target } = admitted;
  if (!target.exec) return refuseUpgrade(socket, 501, 'this engine cannot start a command in a run\'s container');
  let session;
  try {
    session = await target.exec(parsed);
  } catch (err) {
    return refuseUpgrade(socket, 502, `the engine did not start ${JSON.stringify(parsed.cmd[0])} in run ${runId}'s container: ${(err as Error).message}`);
  }
  if (socket.destroyed) return void session.stream.destroy();
  const exec = session;
  deps.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
    const opened = Date.now();
    let over = false;
    /** The command's stream has ended (it exited, or the engine let go of it). */
    let ended = false;
    let exitCode: number | null = null;
    // An audit line in the run's own journal: who ran what, when, for how long; never what went through.
    const audit = { command: parsed.cmd, tty: exec.tty, by: `${tenant} from ${peer.replace(/:\d+$/, '')}`, ...(parsed.task ? { task: parsed.task } : {}) };
    const record = (state: 'started' | 'ended') => {
      if (run.done) return;
      run.emit({ kind: 'exec', state, time: new Date().toISOString(), ...audit, ...(state === 'ended' ? { exitCode, ms: Date.now() - opened } : {}) });
    };
    record('started');
    const cut = (code: number, reason: string) => {
      if (over) return;
      over = true;
      untrack();
      if (ws.readyState === ws.OPEN) ws.close(code, reason.slice(0, 120));
      // The client went while the command runs: hang it up, or the engine would keep it (a shell nobody is at).
      if (!ended) {
        void exec.hangup().then((why) => why && deps.log.warn({ peer, runId, why }, 'exec not hung up: its command goes on until the run ends'), () => {});
      }
      exec.stream.destroy();
      record('ended');
      deps.log.debug({ peer, runId, code, ms: Date.now() - opened }, 'exec closed');
    };
    const untrack = run.ports.track(parsed.task, cut);
    let inFlight = 0;
    const send = (streamId: number, payload: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      inFlight += payload.length;
      ws.send(Buffer.concat([Buffer.from([streamId]), payload]), { binary: true }, () => {
        inFlight -= payload.length;
        if (inFlight < HIGH_WATER / 4 && exec.stream.isPaused()) exec.stream.resume();
      });
      if (inFlight > HIGH_WATER) exec.stream.pause();
    };
    const frames = new FrameSplitter();
    exec.stream.on('data', (c: Buffer) => {
      if (exec.tty) send(1, c);
      else frames.push(c, (s, p) => send(s === 'stderr' ? 2 : 1, Buffer.from(p)));
    });
    const finish = async () => {
      if (ended) return;
      ended = true;
      const code = await exec.exitCode().catch(() => null);
      exitCode = code;
      if (!over && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ exit: code }));
      cut(1000, '');
    };
    exec.stream.on('end', () => void finish());
    exec.stream.on('close', () => void finish());
    exec.stream.on('error', () => void finish());
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (parsed.stdin) exec.stream.write(data);
        return;
      }
      let msg: { resize?: unknown; eof?: unknown };
      try {
        msg = JSON.parse(data.toString('utf8'));
      } catch {
        return cut(1003, 'text frames are {"resize":[COLS,ROWS]} or {"eof":true}');
      }
      if (Array.isArray(msg.resize) && msg.resize.length === 2 && msg.resize.every((n) => Number.isInteger(n) && n >= 1 && n <= 1000)) {
        void exec.resize(msg.resize[0] as number, msg.resize[1] as number).catch(() => {});
      } else if (msg.eof === true && parsed.stdin) {
        // The hijacked connection's write side ends: the command reads end of input.
        exec.stream.end();
      }
    });
    ws.on('close', () => cut(1000, ''));
    ws.on('error', () => cut(1011, 'the client connection failed'));
  });
}
