/**
 * Which Docker Engine the agent talks to, found the way the docker CLI finds it: an explicit choice
 * (`--engine-host`, `--docker-context`), then `DOCKER_HOST`, then `DOCKER_CONTEXT`, then the current
 * context of the CLI's config (`$DOCKER_CONFIG` or `~/.docker/config.json`), read from its context store,
 * then the platform's default socket. Docker Desktop, Colima, OrbStack and Rancher Desktop register a
 * context for a socket elsewhere, so `docker ps` works where the default socket has nothing.
 * Each step that was looked at is kept, so an engine that does not answer can be reported with where the
 * agent looked and why it chose what it chose.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { SshDialAgent, parseSshUrl } from './sshDial';

export interface EngineTarget {
  /** The engine's address as the docker CLI writes it: `unix:///var/run/docker.sock`, `tcp://h:2376`, `ssh://u@h`. */
  host: string;
  /** How it was chosen, in words: `DOCKER_HOST`, `context "colima", the current one in ~/.docker/config.json`. */
  how: string;
  /** The places looked at, in order, with what each gave. */
  looked: string[];
  /** TLS material of a context (or DOCKER_CERT_PATH), for a `tcp://` engine. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; skipVerify?: boolean };
}

export interface FindOptions {
  /** `--engine-host URL`. */
  engineHost?: string;
  /** `--docker-context NAME`. */
  context?: string;
  env?: NodeJS.ProcessEnv;
  home?: string;
  platform?: NodeJS.Platform;
}

export class EngineConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineConfigError';
  }
}

const DEFAULT_UNIX = 'unix:///var/run/docker.sock';
const DEFAULT_PIPE = 'npipe:////./pipe/docker_engine';

/** Where the docker CLI keeps its config and contexts. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string {
  return env.DOCKER_CONFIG || path.join(home, '.docker');
}

/** Finds the engine; throws EngineConfigError for a context that is named but cannot be read. */
export function findEngine(o: FindOptions = {}): EngineTarget {
  const env = o.env ?? process.env;
  const configDir = dockerConfigDir(env, o.home ?? os.homedir());
  const shown = configDir.replace(os.homedir(), '~');
  const looked: string[] = [];
  if (o.engineHost) return { host: checkHost(o.engineHost, '--engine-host'), how: '--engine-host', looked: ['--engine-host'] };
  if (o.context) return fromContext(configDir, o.context, `context "${o.context}", from --docker-context`, ['--docker-context']);
  if (env.DOCKER_HOST) {
    const tls = env.DOCKER_CERT_PATH ? readTls(env.DOCKER_CERT_PATH, env.DOCKER_TLS_VERIFY !== '1' && env.DOCKER_TLS_VERIFY !== undefined) : undefined;
    return { host: checkHost(env.DOCKER_HOST.includes('://') ? env.DOCKER_HOST : `tcp://${env.DOCKER_HOST}`, 'DOCKER_HOST'), how: 'DOCKER_HOST', looked: ['DOCKER_HOST'], tls };
  }
  looked.push('DOCKER_HOST (not set)');
  if (env.DOCKER_CONTEXT && env.DOCKER_CONTEXT !== 'default') {
    return fromContext(configDir, env.DOCKER_CONTEXT, `context "${env.DOCKER_CONTEXT}", from DOCKER_CONTEXT`, [...looked, 'DOCKER_CONTEXT']);
  }
  looked.push(env.DOCKER_CONTEXT ? 'DOCKER_CONTEXT (default)' : 'DOCKER_CONTEXT (not set)');
  const current = currentContext(configDir);
  if (current && current !== 'default') {
    return fromContext(configDir, current, `context "${current}", the current one in ${path.join(shown, 'config.json')}`, [...looked, `${path.join(shown, 'config.json')}`]);
  }
  looked.push(`${path.join(shown, 'config.json')} (${current === 'default' ? 'current context: default' : 'no current context'})`);
  const platform = o.platform ?? process.platform;
  const host = platform === 'win32' ? DEFAULT_PIPE : DEFAULT_UNIX;
  return { host, how: 'the default socket', looked: [...looked, host] };
}

function currentContext(configDir: string): string | undefined {
  const file = path.join(configDir, 'config.json');
  if (!existsSync(file)) return undefined;
  try {
    const cfg = JSON.parse(readFileSync(file, 'utf8')) as { currentContext?: unknown };
    return typeof cfg.currentContext === 'string' && cfg.currentContext ? cfg.currentContext : undefined;
  } catch (err) {
    throw new EngineConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** A context's engine from the store: `contexts/meta/<sha256 of the name>/meta.json`, TLS beside it in `contexts/tls/`. */
function fromContext(configDir: string, name: string, how: string, looked: string[]): EngineTarget {
  const id = createHash('sha256').update(name).digest('hex');
  const meta = path.join(configDir, 'contexts', 'meta', id, 'meta.json');
  if (!existsSync(meta)) {
    throw new EngineConfigError(`Docker context "${name}" is not in ${path.dirname(path.dirname(meta))} (no ${path.join(id.slice(0, 12) + '…', 'meta.json')}): check \`docker context ls\``);
  }
  let ep: { Host?: unknown; SkipTLSVerify?: unknown } | undefined;
  try {
    ep = (JSON.parse(readFileSync(meta, 'utf8')) as { Endpoints?: { docker?: typeof ep } }).Endpoints?.docker;
  } catch (err) {
    throw new EngineConfigError(`Docker context "${name}": cannot read ${meta}: ${(err as Error).message}`);
  }
  if (!ep || typeof ep.Host !== 'string' || !ep.Host) throw new EngineConfigError(`Docker context "${name}" has no docker endpoint host in ${meta}`);
  const tlsDir = path.join(configDir, 'contexts', 'tls', id, 'docker');
  const tls = existsSync(tlsDir) ? readTls(tlsDir, ep.SkipTLSVerify === true) : ep.SkipTLSVerify === true ? { skipVerify: true } : undefined;
  return { host: checkHost(ep.Host, `Docker context "${name}"`), how, looked, tls };
}

function readTls(dir: string, skipVerify: boolean): EngineTarget['tls'] {
  const read = (f: string) => (existsSync(path.join(dir, f)) ? readFileSync(path.join(dir, f)) : undefined);
  return { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem'), skipVerify };
}

const SCHEMES = /^(unix|tcp|ssh|npipe|http|https):\/\//;

function checkHost(host: string, from: string): string {
  if (!SCHEMES.test(host)) throw new EngineConfigError(`${from}: "${host}" is not an engine address; use unix:///path, tcp://HOST:PORT, ssh://USER@HOST or npipe:////./pipe/NAME`);
  return host;
}

/** dockerode's options for a target. */
export function dockerOptions(t: EngineTarget, env: NodeJS.ProcessEnv = process.env): Docker.DockerOptions {
  const h = t.host;
  if (h.startsWith('unix://')) return { socketPath: h.slice('unix://'.length) || '/var/run/docker.sock' };
  if (h.startsWith('npipe://')) return { socketPath: h.slice('npipe://'.length) || '//./pipe/docker_engine' };
  const u = new URL(h);
  if (u.protocol === 'ssh:') {
    // As the docker CLI does: the user's ssh runs `docker system dial-stdio` on the host (agent/engine/sshDial.ts).
    // The host name is only the requests' Host header; every connection comes from the agent.
    return { protocol: 'http', host: 'docker', port: 80, agent: new SshDialAgent(parseSshUrl(h), env) } as Docker.DockerOptions;
  }
  const tls = t.tls;
  const secure = u.protocol === 'https:' || Boolean(tls?.cert || tls?.ca) || u.port === '2376';
  return {
    protocol: secure ? 'https' : 'http', host: u.hostname, port: u.port ? Number(u.port) : secure ? 2376 : 2375,
    ...(tls?.ca ? { ca: tls.ca } : {}), ...(tls?.cert ? { cert: tls.cert } : {}), ...(tls?.key ? { key: tls.key } : {}),
  };
}

/** `unix:///var/run/docker.sock (the default socket)`: the target as the agent names it. */
export function describeTarget(t: EngineTarget): string {
  return `${t.host} (${t.how})`;
}
