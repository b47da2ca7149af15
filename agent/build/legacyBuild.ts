/**
 * The builder of engines without BuildKit (or when `--builder legacy` forces it): the whole context tar on
 * every build, through dockerode. It pulls FROM images itself, with the credentials of the X-Registry-Config
 * header.
 */
import { createReadStream } from 'node:fs';
import type Docker from 'dockerode';
import { BuildError, LABELS, type BuildRequest, type BuildResult } from '../engine/engine';
import { applyBuildProgress, newBuildProgress } from '../engine/buildProgress';
import { IMAGE_REPO } from '../images/dockerImages';
import { explainRegistryError, type RegistryAuth } from './registryAuth';

export interface LegacyBuildOptions {
  /** Told each image the build made, failed builds included (their steps are build cache too). */
  tracked: { made(id: string): void };
  registryAuth?: RegistryAuth;
  /** The image labelled with a digest: the id when the stream did not say it. */
  findImage(digest: string): Promise<string | undefined>;
}

export async function buildLegacy(docker: Docker, req: BuildRequest, opts: LegacyBuildOptions): Promise<BuildResult> {
  // The agent's id too: two agents on one engine each remove only their own images (agent/images/).
  const labels = { [LABELS.managed]: '1', [LABELS.digest]: req.digest, ...(req.agentId ? { [LABELS.agent]: req.agentId } : {}) };
  const context = typeof req.contextTar === 'string' ? createReadStream(req.contextTar) : req.contextTar();
  const registryConfig = await opts.registryAuth?.registryConfig();
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
    dockerfile: req.dockerfile,
    buildargs: req.buildArgs,
    labels,
    t: `${IMAGE_REPO}:${req.digest.slice(0, 32)}`,
    rm: true,
    forcerm: true,
    version: '1',
    ...(req.target ? { target: req.target } : {}),
    ...(req.noCache ? { nocache: true } : {}),
    ...(req.pull ? { pull: true } : {}),
    ...(registryConfig && Object.keys(registryConfig).length ? { registryconfig: registryConfig } : {}),
  } as Docker.ImageBuildOptions);
  const state = newBuildProgress();
  // The legacy builder stops when its client goes away.
  const onAbort = () => (stream as unknown as { destroy(): void }).destroy();
  req.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(err) : resolve()),
        (item: object) => applyBuildProgress(state, item, req.onStep, req.onLog, Object.keys(labels).length),
      ),
    );
  } finally {
    req.signal?.removeEventListener('abort', onAbort);
    for (const id of await twelveDigitIds(docker, state.made)) opts.tracked.made(id);
  }
  req.signal?.throwIfAborted();
  if (state.error) throw new BuildError(explainRegistryError(state.error, opts.registryAuth, req.tenant) ?? state.error.trim());
  const imageId = state.imageId ?? (await opts.findImage(req.digest));
  if (!imageId) throw new BuildError('the build finished without producing an image');
  return { imageId, steps: state.steps, cachedSteps: state.cachedSteps, builder: 'legacy' };
}

/**
 * The build cache is recorded by 12-digit ids, as Docker prints them; buildah (Podman) prints 11, so those
 * are asked of the engine. One that is already gone is no build cache to keep track of.
 */
async function twelveDigitIds(docker: Docker, ids: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of ids) {
    if (id.length >= 12) out.push(id);
    else {
      const full = await docker.getImage(id).inspect().then((i) => i.Id.replace(/^sha256:/, ''), () => undefined);
      if (full) out.push(full.slice(0, 12));
    }
  }
  return out;
}
