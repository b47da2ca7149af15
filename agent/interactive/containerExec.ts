/**
 * A command started inside a running container, as `docker exec` starts it: with a TTY (one raw byte stream,
 * resizable) or without (stdout and stderr kept apart in the engine's frames), stdin attached or not. Runs
 * as the container's own user with the container's limits: nothing beyond what the run itself may do.
 */
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { serialResize } from './serialResize';

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
  /**
   * Hangs the command up (SIGHUP), as a closed terminal does, if it still runs: the engine keeps an exec's
   * process going when its connection is gone (as `docker exec` leaves it), so a client that went would
   * leave its shell behind. Says why not where it could not.
   */
  hangup(): Promise<string | undefined>;
}

export async function startExec(container: Docker.Container, req: ExecRequest): Promise<ExecSession> {
  const exec = await container.exec({
    Cmd: req.cmd, AttachStdin: req.stdin, AttachStdout: true, AttachStderr: true, Tty: req.tty,
    ...(req.tty ? { Env: ['TERM=xterm-256color'] } : {}),
  });
  const stream = (await exec.start({ hijack: true, stdin: req.stdin, Tty: req.tty } as Docker.ExecStartOptions)) as unknown as Duplex;
  const session: ExecSession = {
    stream, tty: req.tty,
    resize: serialResize(async (cols, rows) => {
      if (req.tty) await exec.resize({ w: cols, h: rows });
    }),
    exitCode: async () => (await exec.inspect()).ExitCode ?? null,
    hangup: async () => {
      const info = await exec.inspect();
      if (!info.Running || !info.Pid) return undefined;
      // The engine names the process by its pid on the engine's host. Signalled only where that pid is seen
      // here inside this container's cgroup: an agent beside the engine, not one in a container of its own
      // or on another machine (there the pid would be some other process, or none).
      const cgroup = await readFile(`/proc/${info.Pid}/cgroup`, 'utf8').catch(() => '');
      if (!cgroup.includes(container.id)) return 'the engine\'s processes are not visible to this agent';
      try {
        process.kill(info.Pid, 'SIGHUP');
        return undefined;
      } catch (err) {
        return `SIGHUP: ${(err as Error).message}`;
      }
    },
  };
  if (req.tty && req.cols && req.rows) await session.resize(req.cols, req.rows).catch(() => {});
  return session;
}
