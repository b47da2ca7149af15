/**
 * The single-machine engine: one Docker Engine reached through its API with dockerode. Every container
 * and image it makes is labelled (LABELS) so that it can be found again and cleaned up after a crash.
 */
import { createReadStream } from 'node:fs';
import { chmod, mkdtemp, rm, mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import * as tar from 'tar';
import {
  BuildError, BuildRequest, BuildResult, ContainerHandlers, ContainerSpec, Engine, EngineUnavailableError,
  ExitInfo, LABELS, RunningContainer, containerLabels,
} from './engine';
import { DockerStreamDemuxer, type ByteCursor } from './dockerStream';
import type { LogCursor } from '../store/runJournal';
import { applyBuildProgress, newBuildProgress } from './buildProgress';
import { followStats, saveOutputs } from './containerIo';

const MiB = 1024 * 1024;

type WaitResult = { StatusCode: number; Error?: { Message?: string } };

/** Docker answers 404 for a container that is already gone and 304 for one already stopped: both are fine here. */
function ignoreGone(err: unknown): void {
  const status = (err as { statusCode?: number }).statusCode;
  if (status !== 404 && status !== 304 && status !== 409) throw err;
}

export class DockerEngine implements Engine {
  readonly name = 'docker';
  private readonly docker: Docker;
  private readonly skeletons = new Map<string, Buffer>();

  constructor(docker?: Docker) {
    this.docker = docker ?? new Docker();
  }

  private where(): string {
    const m = this.docker.modem as { socketPath?: string; host?: string; port?: number };
    return m.socketPath ? `unix://${m.socketPath}` : `${m.host}:${m.port}`;
  }

  async ping(): Promise<void> {
    try {
      await Promise.race([
        this.docker.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref()),
      ]);
    } catch (err) {
      throw new EngineUnavailableError(
        `no Docker Engine answers at ${this.where()} (${(err as Error).message}). ` +
          'Start one (`sudo systemctl start docker`, or on Debian `apt-get install docker.io && dockerd &`), ' +
          'or point DOCKER_HOST at a running engine, then try again.',
      );
    }
  }

  async findImage(digest: string): Promise<string | undefined> {
    const images = await this.docker.listImages({ filters: { label: [`${LABELS.digest}=${digest}`] } });
    return images[0]?.Id;
  }

  async build(req: BuildRequest): Promise<BuildResult> {
    const labels = { [LABELS.managed]: '1', [LABELS.digest]: req.digest };
    const stream = await this.docker.buildImage(createReadStream(req.contextTar) as unknown as NodeJS.ReadableStream, {
      dockerfile: req.dockerfile,
      buildargs: req.buildArgs,
      labels,
      t: `bytenite-ctx:${req.digest.slice(0, 32)}`,
      rm: true,
      forcerm: true,
      version: '1',
    } as Docker.ImageBuildOptions);
    const state = newBuildProgress();
    await new Promise<void>((resolve, reject) =>
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(err) : resolve()),
        (item: object) => applyBuildProgress(state, item, req.onStep, req.onLog, Object.keys(labels).length),
      ),
    );
    if (state.error) throw new BuildError(state.error.trim());
    const imageId = state.imageId ?? (await this.findImage(req.digest));
    if (!imageId) throw new BuildError('the build finished without producing an image');
    return { imageId, steps: state.steps, cachedSteps: state.cachedSteps };
  }

  async start(spec: ContainerSpec, handlers: ContainerHandlers): Promise<RunningContainer> {
    const hw = spec.hardware;
    const memory = hw.memoryMiB * MiB;
    const container = await this.docker.createContainer({
      Image: spec.image,
      Cmd: spec.command,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: containerLabels(spec),
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      OpenStdin: false,
      HostConfig: {
        NanoCpus: Math.round(hw.cpus * 1e9),
        Memory: memory,
        MemorySwap: memory, // no swap beyond the limit: an over-allocation is an OOM kill, not a slow crawl
        PidsLimit: spec.pidsLimit,
        Privileged: false,
        SecurityOpt: ['no-new-privileges'],
        CapDrop: ['NET_RAW', 'MKNOD', 'AUDIT_WRITE', 'SYS_CHROOT'],
        NetworkMode: spec.network ? 'bridge' : 'none',
        Binds: [],
        Mounts: [],
        DeviceRequests: hw.gpu ? [{ Driver: 'nvidia', Count: hw.gpu.count, Capabilities: [['gpu']] }] : undefined,
      },
    });
    try {
      // Create the output folder first so the program can simply write to it, whatever its image holds.
      await container.putArchive(await this.skeleton(spec.outputDir), { path: '/' });
      // Attach before start so no output is missed. Attach, not the log API: following the log file is
      // about five times slower here (1M lines: 16 s against 3.3 s) and can end before its last line.
      const attached = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
      // `next-exit` must be asked before start: a plain wait made before start returns at once.
      const waited = container.wait({ condition: 'next-exit' }) as Promise<WaitResult>;
      waited.catch(() => {});
      await container.start();
      return this.supervise(container, spec.outputDir, handlers, waited, new Date(), { stream: attached, live: true });
    } catch (err) {
      await container.remove({ force: true, v: true }).catch(() => {});
      const msg = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
      const hint = hw.gpu ? ' (GPU runs need the NVIDIA Container Toolkit on the agent\'s host)' : '';
      throw new Error(`the engine could not start the container: ${msg}${hint}`);
    }
  }

  async reattach(containerId: string, outputDir: string, handlers: ContainerHandlers, cursor?: LogCursor): Promise<RunningContainer> {
    const container = this.docker.getContainer(containerId);
    const info = await container.inspect();
    const waited = container.wait({ condition: 'not-running' }) as Promise<WaitResult>;
    waited.catch(() => {});
    // The log file holds the same bytes as the attach stream did: read it from the start and skip what
    // was delivered before the restart. (A timestamp cursor cannot come from this engine.)
    const skip = cursor && !('time' in cursor) ? cursor : undefined;
    const stream = (await container.logs({ follow: true, stdout: true, stderr: true })) as unknown as NodeJS.ReadableStream;
    return this.supervise(container, outputDir, handlers, waited, new Date(info.State.StartedAt), { stream, live: false, skip });
  }

  async containerEnv(containerId: string): Promise<Record<string, string>> {
    const info = await this.docker.getContainer(containerId).inspect();
    const env: Record<string, string> = {};
    for (const kv of info.Config.Env ?? []) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return env;
  }

  async listOwn(agentId: string): Promise<Array<{ id: string; runId: string; running: boolean }>> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.agent}=${agentId}`] } });
    return list.map((c) => ({ id: c.Id, runId: c.Labels[LABELS.run] ?? '', running: c.State === 'running' }));
  }

  /**
   * Follows a started container: its output (the attach stream of a container this agent started, or the
   * log file of one it reattaches to after a restart), its stats, and its exit. Each piece of output goes
   * with the byte position it reaches, which a restarted agent gives back to `reattach`.
   */
  private async supervise(
    container: Docker.Container, outputDir: string, handlers: ContainerHandlers, waited: Promise<WaitResult>,
    startedAt: Date, source: { stream: NodeJS.ReadableStream; live: boolean; skip?: ByteCursor },
  ): Promise<RunningContainer> {
    const logs = source.stream;
    const reader = new DockerStreamDemuxer((stream, text, c) => handlers.onOutput(stream, text, c), source.skip);
    const outputDone = new Promise<void>((resolve) => {
      logs.on('data', (c: Buffer) => reader.push(c));
      logs.on('end', resolve);
      logs.on('close', resolve);
      logs.on('error', () => resolve());
    }).then(() => reader.end());
    const stopStats = followStats(container, handlers);
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
          const rest = new DockerStreamDemuxer((stream, text, c) => handlers.onOutput(stream, text, c), reader.position);
          rest.push(Buffer.isBuffer(whole) ? whole : Buffer.from(whole));
          rest.end();
        }
        info = await container.inspect();
      } catch (err) {
        throw new EngineUnavailableError(
          `lost the Docker Engine at ${this.where()} while the run was running (${(err as Error).message}). ` +
            'Its outcome is unknown; check the engine (`systemctl status docker`), then run it again.',
        );
      } finally {
        stopStats();
        (logs as { destroy?: () => void }).destroy?.();
      }
      return {
        exitCode: result.StatusCode ?? info.State.ExitCode,
        oomKilled: Boolean(info.State.OOMKilled),
        startedAt: new Date(info.State.StartedAt),
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
      saveOutputs: (tarPath) => saveOutputs(container, outputDir, tarPath),
      remove: () => container.remove({ force: true, v: true }).then(() => undefined, ignoreGone),
    };
  }

  async removeLeftovers(agentId: string, keep: ReadonlySet<string>): Promise<number> {
    // Only this agent's containers: another agent on the same engine keeps its own.
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABELS.agent}=${agentId}`] } });
    let removed = 0;
    for (const c of list) {
      if (keep.has(c.Labels[LABELS.run] ?? '')) continue;
      await this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignoreGone);
      removed++;
    }
    return removed;
  }

  /** A tar holding just the (world-writable) output folder, made once per folder path. */
  private async skeleton(outputDir: string): Promise<Buffer> {
    const cached = this.skeletons.get(outputDir);
    if (cached) return cached;
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'bytenite-skel-'));
    try {
      const rel = path.posix.normalize(outputDir).replace(/^\/+/, '');
      await mkdir(path.join(tmp, 'root', rel), { recursive: true, mode: 0o777 });
      // mkdir's mode is masked by the umask; the folder must be writable by any user the image runs as.
      const top = path.join(tmp, 'root');
      for (let p = path.join(top, rel), leaf = true; p !== top; p = path.dirname(p), leaf = false) {
        await chmod(p, leaf ? 0o777 : 0o755);
      }
      const file = path.join(tmp, 'skel.tar');
      await tar.c({ cwd: top, file, portable: true }, [rel.split('/')[0]]);
      const buf = await readFile(file);
      this.skeletons.set(outputDir, buf);
      return buf;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
