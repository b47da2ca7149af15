/**
 * The stdin of an interactive run's main process (`run -i`, `run -it`): the write side of the engine's
 * hijacked attach connection, whose read side carries the container's output. Ending it closes the
 * process's stdin (the container is created with StdinOnce), which a piped `run -i` reads as end of input.
 */
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { serialResize } from './serialResize';

export interface ContainerStdin {
  readonly tty: boolean;
  /** False when the engine's connection is behind: wait for `drained` before writing more. */
  write(bytes: Buffer): boolean;
  drained(cb: () => void): void;
  /** End of input: the program reads EOF. */
  end(): void;
  /** The terminal hung up (TTY only): SIGHUP to the process, as a closed terminal sends it. */
  hangup(): Promise<void>;
  /** The terminal's new size (TTY only; ignored otherwise). */
  resize(cols: number, rows: number): Promise<void>;
}

/** What the engine's create call needs for an interactive container. */
export function interactiveCreateOptions(tty: boolean): Pick<Docker.ContainerCreateOptions, 'Tty' | 'OpenStdin' | 'AttachStdin' | 'StdinOnce'> {
  return { Tty: tty, OpenStdin: true, AttachStdin: true, StdinOnce: true };
}

export function containerStdin(container: Docker.Container, attached: Duplex, tty: boolean): ContainerStdin {
  let ended = false;
  return {
    tty,
    write: (bytes) => (!ended && !attached.destroyed ? attached.write(bytes) : true),
    drained: (cb) => {
      if (attached.destroyed || !attached.writableNeedDrain) return cb();
      attached.once('drain', cb);
      attached.once('close', cb);
    },
    end: () => {
      if (ended) return;
      ended = true;
      if (!attached.destroyed) attached.end();
    },
    hangup: async () => {
      if (tty) await container.kill({ signal: 'SIGHUP' }).catch(() => {});
    },
    resize: serialResize(async (cols, rows) => {
      if (tty) await container.resize({ w: cols, h: rows });
    }),
  };
}
