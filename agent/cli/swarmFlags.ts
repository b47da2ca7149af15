/** `bytenite agent --engine swarm --registry H:P [--node-engine URL]...`: the engine those flags choose. */
import Docker from 'dockerode';
import type { Engine } from '../engine/engine';
import type { TenantRegistryAuth } from '../build/registryAuth';
import { SwarmEngine } from '../engine/swarmEngine';
import { dockerOptions, findEngine } from '../engine/engineHost';

/** undefined for the default single-machine engine; throws with what to fix for a bad combination. */
export function swarmEngineFromFlags(engine: string, registry?: string, nodeEngines: string[] = [], registryAuth?: TenantRegistryAuth, choice: { engineHost?: string; dockerContext?: string } = {}): Engine | undefined {
  if (engine === 'docker') {
    if (registry || nodeEngines.length) throw new Error('--registry and --node-engine go with --engine swarm');
    return undefined;
  }
  if (engine !== 'swarm') throw new Error(`--engine ${engine}: not an engine; use docker or swarm`);
  if (!registry) {
    throw new Error('--engine swarm needs --registry HOST:PORT: the registry every node of the Swarm pulls the built images from');
  }
  if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(registry) && !/^\[[0-9a-fA-F:]+\](:\d+)?$/.test(registry)) {
    throw new Error(`--registry ${registry}: give HOST:PORT (no scheme, no path), e.g. 10.0.0.5:5000`);
  }
  // The manager is found as the docker CLI finds an engine (--engine-host, --docker-context, DOCKER_HOST, contexts).
  const target = findEngine({ engineHost: choice.engineHost, context: choice.dockerContext });
  return new SwarmEngine({ registry, nodeEngines: nodeEngines.map(dockerAt), registryAuth, docker: new Docker(dockerOptions(target)), target });
}

/** A Docker client for `unix:///path` or `tcp://host:port`. */
export function dockerAt(url: string): Docker {
  const u = /^unix:\/\/(\/.+)$/.exec(url);
  if (u) return new Docker({ socketPath: u[1] });
  const t = /^tcp:\/\/([^:/]+|\[[^\]]+\]):(\d+)\/?$/.exec(url);
  if (t) return new Docker({ host: t[1].replace(/^\[|\]$/g, ''), port: Number(t[2]) });
  throw new Error(`--node-engine ${url}: give unix:///path/to/docker.sock or tcp://HOST:PORT`);
}
