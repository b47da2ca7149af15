/**
 * A command started inside a running container, as `docker exec` starts it: with a TTY (one raw byte stream,
 * resizable) or without (stdout and stderr kept apart in the engine's frames), stdin attached or not. Runs
 * as the container's own user with the container's limits: nothing beyond what the run itself may do.
 */
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';

export interface ExecRequest {
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  /** The terminal's size at the start (TTY only). */
  cols?: number;
  rows?: number;
}

export interface ExecSession {
  /** TTY: the terminal's bytes. Without: the engine's multiplexed frames (8-byte headers), to be split. */
  stream: Duplex;
  tty: boolean;
  resize(cols: number, rows: number): Promise<void>;
  /** The command's exit code, once its stream has ended. */
  exitCode(): Promise<number | null>;
}

export async function startExec(container: Docker.Container, req: ExecRequest): Promise<ExecSession> {
  const exec = await container.exec({
    Cmd: req.cmd, AttachStdin: req.stdin, AttachStdout: true, AttachStderr: true, Tty: req.tty,
    ...(req.tty ? { Env: ['TERM=xterm-256color'] } : {}),
  });
  const stream = (await exec.start({ hijack: true, stdin: req.stdin, Tty: req.tty } as Docker.ExecStartOptions)) as unknown as Duplex;
  const session: ExecSession = {
    stream, tty: req.tty,
    resize: async (cols, rows) => {
      if (req.tty) await exec.resize({ w: cols, h: rows });
    },
    exitCode: async () => (await exec.inspect()).ExitCode ?? null,
  };
  if (req.tty && req.cols && req.rows) await session.resize(req.cols, req.rows).catch(() => {});
  return session;
}
