/** `bytenite agent`: serve runs to clients over an authenticated WebSocket until SIGINT/SIGTERM. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadOrCreateToken, readTokenFile, readTokenTable } from '../auth/tokens';
import { DEFAULT_PORT, startAgent } from '../server';
import { swarmEngineFromFlags } from './swarmFlags';
import { createLogger } from '../log';
import { defaultDataDir } from './paths';
import { parseMemory } from '../hardware/sizes';
import { parseBuilderSetting } from '../build/builderChoice';

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
  --no-network        run containers with no network
  --hot-pool N        keep up to N containers started ahead of time for runs like recent ones, so
                      they start hot (default 4; 0: none; needs a static busybox, see README)
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
      'hot-pool': { type: 'string', default: '4' }, builder: { type: 'string', default: 'auto' },
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
  const engine = swarmEngineFromFlags(values.engine!, values.registry, values['node-engine']);
  const contextStoreBytes = values['context-store'] !== undefined ? parseMemory(values['context-store']) * 1024 * 1024 : undefined;
  const agent = await startAgent({
    host: values.host!, port, tokens, tls, dataDir, log, pricesFile: values.prices, network: !values['no-network'], engine,
    contextStoreBytes, hotPool, builder: parseBuilderSetting(values.builder),
  });
  process.stdout.write(`listening ${agent.url}\n`);
  process.stderr.write(
    `bytenite agent ${agent.url}: clients need the token in ${tokenFile}${created ? ' (just created)' : ''}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stderr.write('bytenite agent: stopping, cancelling runs in progress\n');
  await agent.close();
  return 0;
}
