/**
 * Which builder the engine gets asked to use. BuildKit whenever the engine has it: `/_ping` answers with
 * `Builder-Version: 2` (the engine's own preference since Engine 23), or says nothing about it on a Linux
 * engine of API 1.39 or later (20.10 builds `version=2` but advertises no preference unless configured).
 * `Builder-Version: 1` (an engine configured with BuildKit off), an older API, or a Windows engine
 * gets the legacy builder. So does an engine that sends the header with anything but 2: Podman sends it
 * empty (and `Libpod-Api-Version`), since its /build is buildah behind the legacy API and its /session
 * answers 404. `--builder` forces either, except BuildKit on Podman, which cannot work.
 */
import { engineRequest, type EngineAddress } from './engineHttp';
import type { Builder } from '../engine/engine';

export type BuilderSetting = Builder | 'auto';

export interface BuilderChoice {
  builder: Builder;
  /** The engine's API version, for versioned paths. */
  apiVersion: string;
  /** Why, in a few words (logged once). */
  reason: string;
}

export function parseBuilderSetting(v: string | undefined): BuilderSetting {
  if (v === undefined || v === 'auto') return 'auto';
  if (v === 'buildkit' || v === 'legacy') return v;
  throw new Error(`--builder takes buildkit, legacy or auto, not ${JSON.stringify(v)}`);
}

function atLeast(version: string, min: [number, number]): boolean {
  const [a, b] = version.split('.').map(Number);
  return a > min[0] || (a === min[0] && b >= min[1]);
}

export async function chooseBuilder(addr: EngineAddress, setting: BuilderSetting): Promise<BuilderChoice> {
  const headers = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
    const req = engineRequest(addr, { method: 'GET', path: '/_ping' });
    req.setTimeout(5000, () => req.destroy(new Error('no answer to /_ping within 5 s')));
    req.on('response', (res) => {
      res.resume();
      resolve(res.headers);
    });
    req.on('error', reject);
    req.end();
  });
  const apiVersion = String(headers['api-version'] ?? '1.41');
  const advertised = headers['builder-version'] as string | undefined;
  const linux = String(headers['ostype'] ?? 'linux') === 'linux';
  const podman = headers['libpod-api-version'] !== undefined;
  // Absent: an engine that predates the header (20.10 has BuildKit); present, only 2 means BuildKit.
  const hasBuildKit = !podman && atLeast(apiVersion, [1, 39]) && linux && (advertised === undefined || advertised === '2');
  if (setting === 'legacy') return { builder: 'legacy', apiVersion, reason: 'forced with --builder legacy' };
  if (podman) {
    const why = "Podman's /build is buildah behind the legacy API: no BuildKit session, no per-step cache report";
    if (setting === 'buildkit') throw new Error(`--builder buildkit cannot work on Podman (${why}); use --builder legacy or auto`);
    return { builder: 'legacy', apiVersion, reason: why };
  }
  if (setting === 'buildkit') {
    if (!atLeast(apiVersion, [1, 39])) throw new Error(`--builder buildkit needs an engine with API 1.39 or later; this one has ${apiVersion}`);
    return { builder: 'buildkit', apiVersion, reason: 'forced with --builder buildkit' };
  }
  if (hasBuildKit) return { builder: 'buildkit', apiVersion, reason: advertised === '2' ? 'the engine prefers it (Builder-Version 2)' : `API ${apiVersion} on Linux` };
  const reason = advertised === '1' ? 'the engine has BuildKit off (Builder-Version 1)'
    : advertised !== undefined && advertised !== '2' ? `the engine does not say Builder-Version 2 (it says ${JSON.stringify(advertised)})`
      : `API ${apiVersion}${linux ? '' : ' on Windows'} has no BuildKit`;
  return { builder: 'legacy', apiVersion, reason };
}
