/**
 * Following a started container for the Docker engine: its output (the attach stream of a container the
 * agent started, or the log file of one it reattaches to after a restart), its stats, and its exit, which
 * a dropped wait or a lagging log file must not leave unsettled.
 */
import type Docker from 'dockerode';
import { EngineUnavailableError, type ContainerHandlers, type ExitInfo, type RunningContainer } from './engine';
import { DockerStreamDemuxer, type ByteCursor } from './dockerStream';
import { followStats, openOutputs } from './containerIo';
import { dockerDialer } from './containerDial';
import { startExec } from '../interactive/containerExec';
import { TtyStreamReader } from '../interactive/ttyStream';
import type { PodmanQuirks } from './podman';

export type WaitResult = { StatusCode: number; Error?: { Message?: string } };

/** Docker answers 404 for a container that is already gone and 304 for one already stopped: both are fine here. */
export function ignoreGone(err: unknown): void {
  const status = (err as { statusCode?: number }).statusCode;
  if (status !== 404 && status !== 304 && status !== 409) throw err;
}

/** What following a container needs of its engine. */
export interface Supervision {
  quirks(): Promise<PodmanQuirks | undefined>;
  /** The engine runs on this machine (its containers' addresses can be dialled directly). */
  local: boolean;
  /** The engine's address as messages give it. */
  where: string;
}

/**
 * Follows a started container: its output (the attach stream of a container this agent started, or the
 * log file of one it reattaches to after a restart), its stats, and its exit. Each piece of output goes
 * with the byte position it reaches, which a restarted agent gives back to `reattach`.
 */
export function superviseContainer(
engine: Supervision, container: Docker.Container, outputDir: string, handlers: ContainerHandlers, waited: Promise<WaitResult>,
  startedAt: Date,
  source: { stream: NodeJS.ReadableStream; live: boolean; skip?: ByteCursor; tty?: boolean; stdin?: RunningContainer['stdin'] },
  /** When the run began, if not when the container did (a hot container is started before its run). */
  goAt?: Date,
): RunningContainer {
  const logs = source.stream;
  let stopStats = () => {};
  let statsStopped = false;
  // Stats are asked once the program has written (or after a quarter second), not with its start: the
  // engine's first sample only sets the baseline of the next, a second later, and making it competes with
  // the engine's copy of the first line (a hot start's first line follows its go by a few ms).
  let statsAsked = false;
  const statsTimer = setTimeout(() => askStats(), 250);
  function askStats(): void {
    if (statsAsked) return;
    statsAsked = true;
    clearTimeout(statsTimer);
    void engine.quirks().then((podman) => {
      if (!statsStopped) stopStats = followStats(container, handlers, Boolean(podman));
    });
  }
  // A container with a terminal writes one raw stream, without the engine's frames.
  const Reader = source.tty ? TtyStreamReader : DockerStreamDemuxer;
  const reader = new Reader((stream, text, c) => {
    handlers.onOutput(stream, text, c);
    // After this turn, which sends the line on its way.
    if (!statsAsked) setImmediate(askStats);
  }, source.skip);
  const outputDone = new Promise<void>((resolve) => {
    logs.on('data', (c: Buffer) => reader.push(c));
    logs.on('end', resolve);
    logs.on('close', resolve);
    logs.on('error', () => resolve());
  }).then(() => reader.end());
  const dialer = dockerDialer(container, { local: engine.local, hasShim: goAt !== undefined && source.live });
  const exited = (async (): Promise<ExitInfo> => {
    let result: WaitResult;
    let info: Docker.ContainerInspectInfo;
    let settled = false;
    // A wait whose connection the engine drops (the engine went away) may never settle: once the log
    // stream has ended, ask the engine directly; an engine that does not answer is an engine gone.
    const polled = outputDone.then(async (): Promise<WaitResult> => {
      for (;;) {
        await new Promise((r) => setTimeout(r, 1000));
        if (settled) return new Promise<never>(() => {});
        const state = (await container.inspect()).State;
        if (!state.Running) return { StatusCode: state.ExitCode };
      }
    });
    polled.catch(() => {});
    try {
      result = await Promise.race([waited, polled]).finally(() => (settled = true));
      // The attach stream ends once the engine has copied all the output; a log file being followed can
      // lag a chatty container: let either finish, within reason.
      await Promise.race([outputDone, new Promise((r) => setTimeout(r, source.live ? 10_000 : 120_000).unref())]);
      if (!source.live) {
        // A followed log file can end as the container stops, before the engine has written the last
        // (partial) line: read it once more, skipping what was already taken.
        const whole = (await container.logs({ follow: false, stdout: true, stderr: true })) as unknown as Buffer;
        const rest = new Reader((stream, text, c) => handlers.onOutput(stream, text, c), reader.position);
        rest.push(Buffer.isBuffer(whole) ? whole : Buffer.from(whole));
        rest.end();
      }
      info = await container.inspect();
    } catch (err) {
      throw new EngineUnavailableError(
        `lost the Docker Engine at ${engine.where} while the run was running (${(err as Error).message}). ` +
          'Its outcome is unknown; check the engine (`systemctl status docker`), then run it again.',
      );
    } finally {
      statsStopped = true;
      clearTimeout(statsTimer);
      stopStats();
      (logs as { destroy?: () => void }).destroy?.();
    }
    const exitCode = result.StatusCode ?? info.State.ExitCode;
    return {
      exitCode,
      oomKilled: Boolean(info.State.OOMKilled) || Boolean(await (await engine.quirks())?.oomKilled(container.id, exitCode)),
      startedAt: goAt ?? new Date(info.State.StartedAt),
      finishedAt: new Date(info.State.FinishedAt),
      error: result.Error?.Message || info.State.Error || undefined,
    };
  })();
  exited.catch(() => {});
  return {
    id: container.id,
    startedAt,
    exited,
    stop: (grace) => container.stop({ t: grace }).then(() => undefined, ignoreGone),
    openOutputs: () => openOutputs(container, outputDir),
    remove: () => container.remove({ force: true, v: true }).then(() => undefined, ignoreGone),
    dial: (port) => dialer.dial(port),
    probe: (port) => dialer.probe(port),
    exec: (req) => startExec(container, req),
    ...(source.stdin ? { stdin: source.stdin } : {}),
  };
}
