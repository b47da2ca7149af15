/**
 * Which builder the engine gets asked to use. BuildKit whenever the engine has it: `/_ping` answers with
 * `Builder-Version: 2` (the engine's own preference since Engine 23), or says nothing about it on a Linux
 * engine of API 1.39 or later (20.10 builds `version=2` but advertises no preference unless configured).
 * `Builder-Version: 1` (an engine configured with BuildKit off), an older API, or a Windows engine
 * gets the legacy builder. `--builder` forces either.
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
  const hasBuildKit = atLeast(apiVersion, [1, 39]) && linux && advertised !== '1';
  if (setting === 'legacy') return { builder: 'legacy', apiVersion, reason: 'forced with --builder legacy' };
  if (setting === 'buildkit') {
    if (!atLeast(apiVersion, [1, 39])) throw new Error(`--builder buildkit needs an engine with API 1.39 or later; this one has ${apiVersion}`);
    return { builder: 'buildkit', apiVersion, reason: 'forced with --builder buildkit' };
  }
  if (hasBuildKit) return { builder: 'buildkit', apiVersion, reason: advertised === '2' ? 'the engine prefers it (Builder-Version 2)' : `API ${apiVersion} on Linux` };
  return { builder: 'legacy', apiVersion, reason: advertised === '1' ? 'the engine has BuildKit off (Builder-Version 1)' : `API ${apiVersion}${linux ? '' : ' on Windows'} has no BuildKit` };
}
