/** `bytenite agent`: serve runs to clients over an authenticated WebSocket until SIGINT/SIGTERM. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadOrCreateToken, readTokenFile, readTokenTable } from '../auth/tokens';
import { DEFAULT_PORT, startAgent } from '../server';
import { swarmEngineFromFlags } from './swarmFlags';
import { createLogger } from '../log';
import { defaultDataDir } from './paths';
import { parseBytes, parseDuration, parseMemory } from '../hardware/sizes';
import { parseBuilderSetting } from '../build/builderChoice';
import { RegistryAuth, TenantRegistryAuth } from '../build/registryAuth';
import { describeStorage } from '../outputs/storageUse';

/** A flag whose value cannot be read: the message names the flag. */
function flagValue<T>(flag: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`);
  }
}

export const AGENT_HELP = `Usage: bytenite agent [options]

Serves runs on this machine's Docker Engine to the CLI and the VS Code extension.
Prints "listening ws://HOST:PORT" on stdout once ready; logs (JSON) go to stderr.

Options:
  --host H            address to listen on (default 127.0.0.1; 0.0.0.0 for a remote agent)
  --port P            port (default ${DEFAULT_PORT}; 0 picks a free one)
  --token-file FILE   the tokens clients must present: \`TENANT TOKEN\` a line, or a bare token for
                      the default tenant; each tenant sees only its own runs (created with a fresh
                      token if missing; default DATA_DIR/token)
  --tls-cert FILE     serve wss:// with this certificate (PEM; with --tls-key)
  --tls-key FILE      the certificate's private key (PEM)
  --data-dir DIR      uploads, outputs and the token (default ~/.local/share/bytenite)
  --prices FILE       JSON that overrides the default prices
  --context-store SIZE  bound of the store of context file contents that spares re-uploads
                      (default 2g; least recently used contents go first)
  --outputs-budget SIZE  disk for run outputs kept until a client fetches them (default: a quarter
                      of the data folder's disk); a run whose outputs do not fit says so
  --outputs-retention DURATION  how long outputs are kept at most, fetched or not (default 7d)
  --image-budget SIZE   disk for the images the agent builds, counted by what they do not share
                      (default: a quarter of the engine's disk, shown at start; the least recently
                      run or built go first; never an image a run or a hot container needs)
  --build-cache-budget SIZE  disk for build cache (default: a tenth of the engine's disk)
  --volume-quota SIZE  what each tenant's named volumes (run -v NAME:/path) may hold together
                      (default 20g): a run that would write a volume over it is refused
  --no-network        run containers with no network
  --hot-pool N        keep up to N containers started ahead of time for runs like recent ones, so
                      they start hot (default 4; 0: none; needs a static busybox, see README)
  --engine-host URL   the Docker Engine to use (unix:///path, tcp://HOST:PORT, ssh://USER@HOST); by
                      default it is found as the docker CLI finds it: DOCKER_HOST, then
                      DOCKER_CONTEXT, then the current context of ~/.docker/config.json, then the
                      default socket
  --docker-context NAME  the engine of this Docker context (\`docker context ls\`)
  --registry-auth FILE  registry credentials for private base images, in a Docker config's format
                      ({"auths": {"HOST": {"auth": "base64 of user:password"}}}, as docker login
                      writes it); default: the agent user's own $DOCKER_CONFIG/config.json or
                      ~/.docker/config.json, read at each build; for the default tenant only
  --tenant-registry-auth TENANT=FILE  a tenant's own registry credentials (repeatable; same format):
                      on a shared agent other tenants never get the owner's
  --builder B         buildkit, legacy or auto (default: BuildKit whenever the engine has it; legacy
                      is the fallback for engines without it)
  --engine E          docker (default: containers on this machine's engine) or swarm (services on
                      the Swarm whose manager DOCKER_HOST names)
  --registry H:P      with --engine swarm: the registry the agent pushes images to and every node
                      pulls them from (listed under --insecure-registry on each engine if plain HTTP)
  --node-engine URL   with --engine swarm, repeatable: a node's own engine (unix:///... or
                      tcp://host:port); tasks on it report stats and the OOM flag, and their outputs come back
`;

export async function agentCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: String(DEFAULT_PORT) },
      'token-file': { type: 'string' }, 'data-dir': { type: 'string' }, prices: { type: 'string' },
      'no-network': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
      'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' },
      engine: { type: 'string', default: 'docker' }, registry: { type: 'string' },
      'node-engine': { type: 'string', multiple: true }, 'context-store': { type: 'string' },
      'hot-pool': { type: 'string', default: '4' }, 'outputs-budget': { type: 'string' }, 'outputs-retention': { type: 'string' },
      'image-budget': { type: 'string' }, 'build-cache-budget': { type: 'string' }, 'volume-quota': { type: 'string' },
      'engine-host': { type: 'string' }, 'docker-context': { type: 'string' },
      builder: { type: 'string', default: 'auto' }, 'registry-auth': { type: 'string' }, 'tenant-registry-auth': { type: 'string', multiple: true },
    },
  });
  if (values.help) {
    process.stdout.write(AGENT_HELP);
    return 0;
  }
  const hotPool = Number(values['hot-pool']);
  if (!Number.isInteger(hotPool) || hotPool < 0 || hotPool > 64) throw new Error(`--hot-pool ${values['hot-pool']}: a whole number from 0 to 64`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${values.port}: not a port number`);
  const dataDir = path.resolve(values['data-dir'] ?? defaultDataDir());
  const tokenFile = path.resolve(values['token-file'] ?? path.join(dataDir, 'token'));
  const log = createLogger();
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) throw new Error('--tls-cert and --tls-key go together');
  const { created } = await loadOrCreateToken(tokenFile).catch(async (err) => {
    // An unreadable token file is the operator's to fix; say which file and why.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: await readTokenFile(tokenFile), created: false };
    throw new Error(`cannot use token file ${tokenFile}: ${(err as Error).message}`);
  });
  const tokens = await readTokenTable(tokenFile);
  const tls = values['tls-cert']
    ? { cert: await readFile(values['tls-cert']), key: await readFile(values['tls-key']!) }
    : undefined;
  const registryAuth = new TenantRegistryAuth(
    values['registry-auth'] !== undefined ? RegistryAuth.fromFlag(values['registry-auth']) : new RegistryAuth(),
    new Map((values['tenant-registry-auth'] ?? []).map((v) => {
      const eq = v.indexOf('=');
      if (eq <= 0) throw new Error(`--tenant-registry-auth ${v}: give TENANT=FILE, e.g. alice=/etc/bytenite/alice-docker.json`);
      const tenant = v.slice(0, eq);
      // A misspelt tenant would silently never get its credentials.
      if (![...tokens.values()].includes(tenant)) throw new Error(`--tenant-registry-auth ${v}: no tenant ${JSON.stringify(tenant)} in the token file ${tokenFile}`);
      return [tenant, RegistryAuth.fromFlag(v.slice(eq + 1), `--tenant-registry-auth ${tenant}=`)];
    })),
  );
  const engine = swarmEngineFromFlags(values.engine!, values.registry, values['node-engine'], registryAuth, { engineHost: values['engine-host'], dockerContext: values['docker-context'] });
  const contextStoreBytes = values['context-store'] !== undefined ? parseMemory(values['context-store']) * 1024 * 1024 : undefined;
  const size = (flag: 'image-budget' | 'build-cache-budget'): number | undefined => {
    const text = values[flag];
    if (text === undefined) return undefined;
    try {
      return parseMemory(text) * 1024 * 1024;
    } catch {
      throw new Error(`--${flag} ${text}: use a size of at least 6m, such as 512m or 20g`);
    }
  };
  const outputsBudgetBytes = values['outputs-budget'] !== undefined ? flagValue('--outputs-budget', () => parseBytes(values['outputs-budget']!)) : undefined;
  const volumeQuotaBytes = values['volume-quota'] !== undefined ? flagValue('--volume-quota', () => parseBytes(values['volume-quota']!)) : undefined;
  // A test hook (no flag): how often a writing run's volumes are measured against the quota.
  const volumeCheckMs = process.env.BYTENITE_VOLUME_CHECK_MS ? Number(process.env.BYTENITE_VOLUME_CHECK_MS) : undefined;
  const outputsRetentionMs = values['outputs-retention'] !== undefined ? flagValue('--outputs-retention', () => parseDuration(values['outputs-retention']!)) : undefined;
  // Listened for from here, not after the start-up lines: a SIGTERM while the agent starts (taking up its
  // runs, measuring its disk) would otherwise end the process at once and leave their containers running.
  let stopRequested = false;
  let onStop = () => {
    stopRequested = true;
  };
  process.once('SIGINT', () => onStop());
  process.once('SIGTERM', () => onStop());
  const agent = await startAgent({
    host: values.host!, port, tokens, tls, dataDir, log, pricesFile: values.prices, network: !values['no-network'], engine,
    contextStoreBytes, hotPool, imageBudgetBytes: size('image-budget'), buildCacheBudgetBytes: size('build-cache-budget'),
    outputsBudgetBytes, outputsRetentionMs, engineHost: values['engine-host'], dockerContext: values['docker-context'], builder: parseBuilderSetting(values.builder),
    registryAuth, volumeQuotaBytes, volumeCheckMs,
  });
  process.stdout.write(`listening ${agent.url}\n`);
  process.stderr.write(
    `bytenite agent ${agent.url}: clients need the token in ${tokenFile}${created ? ' (just created)' : ''}\n` +
      `bytenite agent: engine: ${(await agent.engineDescription()) ?? 'not answering yet (runs fail until it does)'}\n` +
      describeStorage(await agent.storage()).map((l) => `bytenite agent: disk: ${l}\n`).join('') +
      (agent.isolation ? `bytenite agent: network: ${agent.isolation}\n` : ''),
  );
  await new Promise<void>((resolve) => {
    if (stopRequested) resolve();
    else onStop = resolve;
  });
  process.stderr.write('bytenite agent: stopping, cancelling runs in progress\n');
  await agent.close();
  return 0;
}
