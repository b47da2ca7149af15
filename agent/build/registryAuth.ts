/**
 * Registry credentials for builds, from the agent owner's Docker config (`$DOCKER_CONFIG/config.json` or
 * `~/.docker/config.json`), or from `bytenite agent --registry-auth FILE` in the same format: what `docker
 * login` writes, `auths` or a credential helper (`credsStore`, `credHelpers`). BuildKit asks for them through
 * the session's Auth service, per registry host; the legacy builder gets them all in the X-Registry-Config
 * header, as the docker CLI sends them. On a shared agent they are per tenant (TenantRegistryAuth). Passwords
 * stay in these objects: nothing here logs them or puts them in an error message.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dockerConfigDir } from '../engine/engineHost';
import { helperGet, helperList } from './credentialHelper';
import { DEFAULT_TENANT } from '../auth/tokens';

export interface RegistryCredentials {
  username: string;
  /** A password, or an identity token (then `username` is empty, as the docker CLI answers). */
  secret: string;
}

/** What the legacy builder's X-Registry-Config carries for one registry (the Engine API's AuthConfig). */
interface AuthConfig {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

/** What a Docker config says about registry credentials. */
interface DockerConfig {
  /** By host, as `registryHost` spells it. */
  auths: Map<string, AuthConfig>;
  /** The helper that keeps every registry's credentials (`docker-credential-NAME`). */
  credsStore?: string;
  /** Helpers for single registries, by host. */
  credHelpers: Map<string, string>;
}

/** Docker Hub's key in a Docker config, whatever name the engine asks for it by. */
const HUB_KEY = 'https://index.docker.io/v1/';
const HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** A config key (`https://host/v1/`, `host:port`) as the bare host the engine asks for, as docker's CLI maps it. */
export function registryHost(key: string): string {
  const host = key.replace(/^https?:\/\//, '').split('/')[0].toLowerCase();
  return HUB_HOSTS.has(host) ? HUB_KEY : host;
}

export class RegistryAuth {
  /**
   * `file`: by default the owner's own Docker config, which may well not exist (then every pull is anonymous);
   * with `flag`, a file the operator named with that flag, which must be readable.
   */
  constructor(readonly file = path.join(dockerConfigDir(process.env, os.homedir()), 'config.json'), private readonly flag?: string) {}

  /** A file the operator named (`flag`): read once now so a wrong file fails at start, in words naming the flag. */
  static fromFlag(file: string, flag = '--registry-auth'): RegistryAuth {
    const auth = new RegistryAuth(path.resolve(file), flag);
    auth.read();
    return auth;
  }

  /** The flag and its file as the operator wrote them: `--registry-auth FILE`, `--tenant-registry-auth T=FILE`. */
  private named(): string {
    return this.flag?.endsWith('=') ? `${this.flag}${this.file}` : `${this.flag} ${this.file}`;
  }

  /**
   * The config is read at each build: a `docker login` done while the agent runs counts from the next build.
   * A config of the owner's that cannot be read gives no credentials (as for a first-time docker user).
   */
  private read(): DockerConfig {
    const none: DockerConfig = { auths: new Map(), credHelpers: new Map() };
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if (!this.flag) return none;
      throw new Error(`${this.named()}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    let parsed: { auths?: unknown; credsStore?: unknown; credHelpers?: unknown };
    try {
      parsed = JSON.parse(text) ?? {};
    } catch (err) {
      if (!this.flag) return none;
      throw new Error(`${this.named()} is not JSON (${(err as Error).message}): give a Docker config file, {"auths": {"HOST": {"auth": "base64 of user:password"}}}`);
    }
    const config = none;
    if (parsed.auths && typeof parsed.auths === 'object') {
      for (const [key, value] of Object.entries(parsed.auths as Record<string, unknown>)) {
        const entry = toAuthConfig(key, value);
        if (entry) config.auths.set(registryHost(key), entry);
      }
    }
    if (typeof parsed.credsStore === 'string' && parsed.credsStore) config.credsStore = parsed.credsStore;
    if (parsed.credHelpers && typeof parsed.credHelpers === 'object') {
      for (const [key, helper] of Object.entries(parsed.credHelpers as Record<string, unknown>)) {
        if (typeof helper === 'string' && helper) config.credHelpers.set(registryHost(key), helper);
      }
    }
    return config;
  }

  /**
   * The answer to the session's Auth/Credentials for `host`; undefined: anonymous. As the docker CLI looks:
   * the host's credential helper, else the config's credential store, else (or when they have none) `auths`.
   */
  async credentials(host: string): Promise<RegistryCredentials | undefined> {
    const config = this.read();
    const key = registryHost(host);
    const helper = config.credHelpers.get(key) ?? config.credsStore;
    const kept = helper ? await helperGet(helper, key) : undefined;
    if (kept) return kept;
    const e = config.auths.get(key);
    if (!e) return undefined;
    if (e.identitytoken) return { username: '', secret: e.identitytoken };
    return { username: e.username ?? '', secret: e.password ?? '' };
  }

  /** Where credentials for `host` would come from, for error messages (no secret in it). */
  source(host: string): { helper: string } | 'auths' | undefined {
    const config = this.read();
    const key = registryHost(host);
    const helper = config.credHelpers.get(key) ?? config.credsStore;
    if (helper) return { helper };
    return config.auths.has(key) ? 'auths' : undefined;
  }

  /** The registry hosts this config has credentials for (no credential read: helpers are only listed). */
  async hosts(): Promise<Set<string>> {
    const config = this.read();
    const out = new Set<string>([...config.auths.keys(), ...config.credHelpers.keys()]);
    if (config.credsStore) for (const server of await helperList(config.credsStore).catch(() => [])) out.add(registryHost(server));
    return out;
  }

  /** The legacy builder's X-Registry-Config: every registry the config has credentials for, as the docker CLI sends them. */
  async registryConfig(): Promise<Record<string, AuthConfig>> {
    const config = this.read();
    const out: Record<string, AuthConfig> = {};
    for (const e of config.auths.values()) out[e.serveraddress] = e;
    const helped = new Map<string, string>();
    if (config.credsStore) for (const server of await helperList(config.credsStore)) helped.set(server, config.credsStore);
    for (const [server, helper] of config.credHelpers) helped.set(server, helper);
    for (const [server, helper] of helped) {
      const c = await helperGet(helper, server);
      if (!c) continue;
      out[server] = c.username ? { username: c.username, password: c.secret, serveraddress: server } : { identitytoken: c.secret, serveraddress: server };
    }
    return out;
  }
}

/**
 * Whose credentials a build gets on a shared agent. A tenant with a file of its own
 * (`--tenant-registry-auth TENANT=FILE`) gets that file's; the owner's (the Docker config, or
 * `--registry-auth FILE`) go to the `default` tenant only, so that another tenant's `FROM` can never pull the
 * owner's private images. An agent with one token has only the `default` tenant: its owner's credentials.
 */
export class TenantRegistryAuth {
  constructor(readonly owner: RegistryAuth | undefined, private readonly byTenant: ReadonlyMap<string, RegistryAuth> = new Map()) {}

  for(tenant = DEFAULT_TENANT): RegistryAuth | undefined {
    return this.byTenant.get(tenant) ?? (tenant === DEFAULT_TENANT ? this.owner : undefined);
  }

  /**
   * The registry hosts anyone but `tenant` holds credentials for (the owner's count for other tenants). An
   * image from one of them that the engine already has may be theirs, so the build must ask the registry.
   */
  async othersHosts(tenant: string): Promise<Set<string>> {
    const mine = this.for(tenant);
    const others = [...(tenant === DEFAULT_TENANT ? [] : [this.owner]), ...[...this.byTenant].filter(([t]) => t !== tenant).map(([, a]) => a)];
    const hosts = new Set<string>();
    for (const auth of others) if (auth && auth !== mine) for (const h of await auth.hosts()) hosts.add(h);
    return hosts;
  }
}

/** One `auths` entry: `auth` (base64 of `user:password`), or `username`/`password`, or an identity token. */
function toAuthConfig(key: string, value: unknown): AuthConfig | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  const str = (x: unknown): string | undefined => (typeof x === 'string' && x !== '' ? x : undefined);
  const serveraddress = key;
  const identitytoken = str(v.identitytoken);
  if (identitytoken) return { identitytoken, serveraddress };
  const auth = str(v.auth);
  if (auth) {
    const plain = Buffer.from(auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1), serveraddress };
  }
  const username = str(v.username);
  const password = str(v.password);
  return username && password ? { username, password, serveraddress } : undefined;
}

/**
 * A build error that comes from a registry refusing the agent, with what to do about it; undefined for any
 * other error. The engine's own words stay first (they name the image); the hint names the host and where
 * the agent looks for credentials, never a credential.
 */
export function explainRegistryError(message: string, auth: RegistryAuth | undefined, tenant = DEFAULT_TENANT): string | undefined {
  if (!/401 Unauthorized|unauthorized: authentication required|no basic auth credentials|pull access denied|failed to authorize|denied: requested access/i.test(message)) {
    return undefined;
  }
  const host = registryIn(message);
  if (!auth && tenant !== DEFAULT_TENANT) {
    return `${message.trim()}\nThe base image is private or does not exist: tenant ${JSON.stringify(tenant)} has no registry credentials on this agent (the owner's are not shared with other tenants): its operator can give them with --tenant-registry-auth ${tenant}=FILE.`;
  }
  const where = auth ? auth.file : 'the agent\'s Docker config';
  const registry = host ?? 'the registry';
  const source = host ? auth?.source(host) : undefined;
  const login = `run \`docker login ${host ?? 'HOST'}\` as the agent's user, or start the agent with --registry-auth FILE (a Docker config with "auths")`;
  const what = source === 'auths'
    ? `${registry} refused the credentials the agent has for it in ${where}: check them (docker login ${registry}, as the agent's user)`
    : source
    ? `${registry} refused the credentials of docker-credential-${source.helper} (named in ${where}), or it had none: ${login}`
    : `the agent has no credentials for ${registry} in ${where}: ${login}`;
  return `${message.trim()}\nThe base image is private or does not exist: ${what}.`;
}

/**
 * The registry an engine error names: BuildKit says "pulling from host H", the legacy builder gives the URL
 * it asked ("http://H/v2/…"), others the image reference ("H/repo:tag").
 */
function registryIn(message: string): string | undefined {
  const name = '((?:[a-z0-9-]+\\.)*[a-z0-9-]+(?::\\d+)|(?:[a-z0-9-]+\\.)+[a-z]{2,})';
  for (const re of [new RegExp(`from host ${name}`, 'i'), new RegExp(`https?://${name}/`, 'i'), new RegExp(`(?:^|[\\s"'=])${name}/[a-z0-9._/-]+`, 'i')]) {
    const m = re.exec(message);
    if (m) return m[1];
  }
  return undefined;
}
