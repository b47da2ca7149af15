/**
 * The checks a run passes before the run manager takes it, whoever asks for it: a client's `run.create` and
 * a schedule's firing start runs through here, so a scheduled run is refused for the very reasons (in the
 * very words) a client's would be.
 */
import type { Catalog, ErrorCode, RunSpec } from '../protocol';
import type { Engine } from '../engine/engine';
import type { RunManager } from './runManager';
import type { Run } from './run';
import type { Volumes } from '../volumes/volumes';
import { checkHardware } from '../hardware/catalog';
import { checkDockerfilePath } from '../context/checkContext';

export class RunRefusedError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

export interface AdmitDeps {
  runs: RunManager;
  engine: Engine;
  catalog: Catalog;
  maxContextBytes: number;
  volumes?: Pick<Volumes, 'check'>;
}

export async function admitRun(deps: AdmitDeps, spec: RunSpec, tenant: string): Promise<Run> {
  const badPath = checkDockerfilePath(spec.dockerfile);
  if (badPath) throw new RunRefusedError('bad_dockerfile_path', badPath);
  const badHardware = checkHardware(deps.catalog, spec.hardware);
  if (badHardware) throw new RunRefusedError('hardware_unavailable', badHardware);
  if (spec.contextBytes > deps.maxContextBytes) {
    throw new RunRefusedError('bad_context',
      `the context is ${mib(spec.contextBytes)}; this agent takes at most ${mib(deps.maxContextBytes)}. ` +
      'Leave large files out with .dockerignore.');
  }
  // Refused before anything is built: the run could only fail once its container is up.
  if (spec.interactive && deps.engine.noInteractive) throw new RunRefusedError('bad_message', deps.engine.noInteractive);
  await deps.engine.ping();
  if (spec.volumes?.length) {
    if (!deps.volumes) throw new RunRefusedError('volume_refused', 'this agent has no volumes');
    await deps.volumes.check(spec, tenant);
  }
  return deps.runs.create(spec, tenant);
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
