/**
 * `bytenite exec [-i] [-t] RUN -- COMMAND...`: a command inside a running run's container, as `docker exec`
 * runs one: `-i` keeps stdin attached, `-t` gives it a terminal (this one put in raw mode, its size followed).
 * Exits with the command's exit code; 125 when it could not be started, as docker does.
 */
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { connect } from './connect';
import { EXIT_NOT_RUN, UsageError, parseCount } from './runCommand';

export const EXEC_HELP = `Usage: bytenite exec [options] RUN -- COMMAND [ARG...]

Runs COMMAND inside run RUN's container while it runs, as its own user and within its limits.

Options:
  -i, --interactive    keep stdin attached (type into the command, or pipe to it)
  -t, --tty            give the command a terminal (this one goes raw until it ends)
  --task K             of a fan-out run (--parallel), task K's container (default 0)
  --agent URL          the run's agent, ws:// or wss:// (the embedded agent lives only in its own bytenite run)
  --token-file FILE    the agent's token (or set BYTENITE_TOKEN)
  --ca-file FILE       CA certificate (PEM) of a wss:// agent with a self-signed certificate
`;

export async function execCommand(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const { values, positionals } = parseArgs({
    args: dash >= 0 ? argv.slice(0, dash) : argv,
    allowPositionals: true,
    options: {
      interactive: { type: 'boolean', short: 'i', default: false }, tty: { type: 'boolean', short: 't', default: false },
      task: { type: 'string' }, agent: { type: 'string' }, 'token-file': { type: 'string' }, 'ca-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(EXEC_HELP);
    return 0;
  }
  const cmd = dash >= 0 ? argv.slice(dash + 1) : positionals.slice(1);
  const runId = positionals[0];
  if (!runId || !/^r-[a-z0-9]{6,40}$/.test(runId)) throw new UsageError('give a run id, like r-0123456789abcdef, then -- and the command');
  if (!cmd.length) throw new UsageError('give the command to run after --, e.g. bytenite exec -it RUN -- sh');
  if (!values.agent) throw new UsageError('--agent URL: exec reaches a run on an agent of its own (a run of the embedded agent lives in its bytenite run)');
  const task = values.task === undefined ? undefined : parseCount(values.task, '--task', 0, 255);
  const stdin = process.stdin;
  const tty = Boolean(values.tty);
  if (tty && !stdin.isTTY && values.interactive) process.stderr.write('bytenite: -t: stdin is not a terminal\n');

  const conn = await connect({ agent: values.agent, 'token-file': values['token-file'], 'ca-file': values['ca-file'] });
  let exit: number | null = null;
  let closed!: (code: number) => void;
  const ended = new Promise<number>((resolve) => (closed = resolve));
  // Listening from before the open: the command's first output can come with the upgrade's answer, and ws
  // emits it before this function's await resumes.
  const listen = (ws: WebSocket) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        (data[0] === 2 ? process.stderr : process.stdout).write(data.subarray(1));
        return;
      }
      try {
        const m = JSON.parse(data.toString('utf8')) as { exit?: number | null };
        if ('exit' in m) exit = m.exit ?? null;
      } catch { /* not ours: ignored */ }
    });
    ws.on('close', (code, reason) => {
      if (code !== 1000 && reason.length) process.stderr.write(`\r\nbytenite: ${reason.toString()}\n`);
      closed(exit ?? EXIT_NOT_RUN);
    });
    ws.on('error', () => {});
  };
  let ws: WebSocket;
  try {
    ws = await conn.client.exec(runId, {
      cmd, tty, stdin: Boolean(values.interactive), task,
      cols: process.stdout.columns, rows: process.stdout.rows,
    }, listen);
  } catch (err) {
    process.stderr.write(`bytenite: ${(err as Error).message}\n`);
    await conn.close();
    return EXIT_NOT_RUN;
  }
  const raw = tty && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const restore = () => {
    if (raw) stdin.setRawMode(false);
  };
  try {
    if (ws.readyState === ws.OPEN) {
      if (values.interactive) {
        stdin.on('data', (c: Buffer) => ws.send(c, { binary: true }));
        stdin.on('end', () => ws.send(JSON.stringify({ eof: true })));
        stdin.resume();
      }
      if (raw) {
        process.stdout.on('resize', () => ws.send(JSON.stringify({ resize: [process.stdout.columns, process.stdout.rows] })));
      }
    }
    return await ended;
  } finally {
    restore();
    stdin.pause();
    await conn.close();
  }
}
