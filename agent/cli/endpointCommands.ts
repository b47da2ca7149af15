/**
 * `bytenite deploy NAME [DOCKERFILE] --port N …`, `bytenite endpoints`, `bytenite undeploy NAME`,
 * `bytenite endpoint logs NAME`. Deploy builds as `bytenite run` does (a build-only run: warm and
 * incremental alike), then registers the endpoint on the agent and prints its URL.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { EndpointSummary, HardwareRequest, RequestRecord } from '../protocol';
import { formatUsd } from '../cost/cost';
import { buildOnly } from './buildOnly';
import { parseCpus, parseDuration, parseGpu, parseMemory, readHardwareLabels } from '../hardware/sizes';
import { connect } from './connect';
import { RunReporter } from './runReporter';
import { EXIT_NOT_RUN, UsageError, parseCount, parseEnvPair, readEnvFile } from './runCommand';

const CONNECT_OPTIONS = { agent: { type: 'string' }, 'token-file': { type: 'string' }, 'ca-file': { type: 'string' }, 'data-dir': { type: 'string' } } as const;

export const DEPLOY_HELP = `Usage: bytenite deploy NAME [DOCKERFILE] --port N [options] --agent URL --token-file FILE

Builds DOCKERFILE (default ./Dockerfile) and serves it at http(s)://AGENT/e/NAME/: an instance starts on
the first request and stops after --idle with nothing in flight.

Options:
  --port N             the container port requests go to (required)
  --min N              instances kept with no traffic (default 0)
  --max N              most instances (default 4)
  --idle DURATION      stop an instance after this long with nothing in flight (default 60s)
  --concurrency N      requests in flight per instance before another starts (default 32)
  --ready-path PATH    an instance is ready once this path answers 2xx (default: once the port accepts)
  --public             serve without the agent token
  --context DIR, --cpus N, --memory SIZE, --gpu TYPE[:COUNT], --env K=V, --env-file FILE,
  --secret-env K[=V], --build-arg K=V, -u USER, --target STAGE: as for bytenite run
`;

export async function deployCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      ...CONNECT_OPTIONS, port: { type: 'string' }, min: { type: 'string' }, max: { type: 'string' }, idle: { type: 'string' },
      concurrency: { type: 'string' }, 'ready-path': { type: 'string' }, public: { type: 'boolean', default: false },
      context: { type: 'string' }, cpus: { type: 'string' }, memory: { type: 'string' }, gpu: { type: 'string' },
      env: { type: 'string', multiple: true }, 'env-file': { type: 'string', multiple: true },
      'secret-env': { type: 'string', multiple: true }, 'build-arg': { type: 'string', multiple: true },
      user: { type: 'string', short: 'u' }, target: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(DEPLOY_HELP);
    return 0;
  }
  const [name, file] = positionals;
  if (!name || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw new UsageError('deploy needs a NAME: lower-case letters, digits and -, at most 63');
  if (!values.port) throw new UsageError('deploy needs --port N: the container port requests go to');
  const dockerfile = path.resolve(file ?? 'Dockerfile');
  if (!existsSync(dockerfile)) throw new UsageError(`no Dockerfile at ${dockerfile}`);
  const labels = readHardwareLabels(await readFile(dockerfile, 'utf8'));
  // Said here rather than dropped: an endpoint's instances run side by side, and one writer at a time cannot hold there.
  if (labels.volumes?.length) throw new UsageError(`${path.relative(process.cwd(), dockerfile) || 'Dockerfile'} has LABEL bytenite.volume: an endpoint cannot mount volumes; deploy it from a Dockerfile without one`);
  const hardware: HardwareRequest = {
    cpus: values.cpus ? parseCpus(values.cpus) : labels.cpus ?? 1,
    memoryMiB: values.memory ? parseMemory(values.memory) : labels.memoryMiB ?? 1024,
  };
  const gpu = values.gpu ? parseGpu(values.gpu) : labels.gpu;
  if (gpu) hardware.gpu = gpu;
  const env: Record<string, string> = {};
  for (const f of values['env-file'] ?? []) Object.assign(env, await readEnvFile(f));
  for (const p of values.env ?? []) { const [k, v] = parseEnvPair(p, '--env'); env[k] = v; }
  const secretEnv: string[] = [];
  for (const p of values['secret-env'] ?? []) { const [k, v] = parseEnvPair(p, '--secret-env'); env[k] = v; secretEnv.push(k); }
  const buildArgs: Record<string, string> = {};
  for (const p of values['build-arg'] ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`--build-arg ${p}: use K=V`);
    buildArgs[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const settings = {
    port: parseCount(values.port, '--port', 1, 65535),
    ...(values.min !== undefined ? { min: parseCount(values.min, '--min', 0, 64) } : {}),
    ...(values.max !== undefined ? { max: parseCount(values.max, '--max', 1, 64) } : {}),
    ...(values.idle !== undefined ? { idleMs: parseDuration(values.idle) } : {}),
    ...(values.concurrency !== undefined ? { concurrency: parseCount(values.concurrency, '--concurrency', 1, 10_000) } : {}),
    ...(values['ready-path'] ? { readyPath: values['ready-path'] } : {}),
    public: values.public,
  };
  const reporter = new RunReporter({ json: values.json!, tty: Boolean(process.stderr.isTTY), stdout: process.stdout, stderr: process.stderr });
  const conn = await connect(values);
  try {
    // Asked first, so an agent that serves no endpoints (the embedded one, a Swarm) says why before a build.
    await conn.client.endpoints();
    const spec = await buildOnly(conn.client, reporter, {
      contextDir: path.resolve(values.context ?? path.dirname(dockerfile)), dockerfile, hardware, buildArgs, env, secretEnv,
      user: values.user, target: values.target, name: `deploy ${name}`,
    });
    if (!spec) return EXIT_NOT_RUN;
    const ep = await conn.client.deployEndpoint(name, spec, settings);
    const url = `${conn.client.url.replace(/^ws/, 'http').replace(/\/$/, '')}${ep.path}`;
    if (values.json) process.stdout.write(JSON.stringify({ type: 'endpoint', url, endpoint: ep }) + '\n');
    else process.stdout.write(`${url}\n`);
    process.stderr.write(`bytenite: endpoint ${name} deployed (${ep.settings.min}..${ep.settings.max} instances, idle ${ep.settings.idleMs / 1000} s${ep.settings.public ? ', public' : ', needs the agent token'})\n`);
    if (ep.cost) process.stderr.write(`bytenite: ${ep.cost.idle.text}\n`);
    return 0;
  } catch (err) {
    reporter.error((err as Error).message);
    return EXIT_NOT_RUN;
  } finally {
    await conn.close();
  }
}

export async function endpointsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...CONNECT_OPTIONS, json: { type: 'boolean', default: false } } });
  const conn = await connect(values);
  try {
    const list = await conn.client.endpoints();
    const base = conn.client.url.replace(/^ws/, 'http').replace(/\/$/, '');
    if (values.json) {
      for (const e of list) process.stdout.write(JSON.stringify({ ...e, url: base + e.path }) + '\n');
      return 0;
    }
    if (!list.length) process.stderr.write('no endpoints on this agent\n');
    for (const e of list) {
      const serving = e.instances.filter((i) => i.state === 'ready').length;
      const state = e.instances.some((i) => i.state === 'starting') ? 'starting' : serving ? `serving ${serving}` : 'idle';
      const today = e.requestsToday !== undefined ? `  ${String(e.requestsToday).padStart(6)} today` : '';
      process.stdout.write(`${e.name.padEnd(20)} ${state.padEnd(12)} ${String(e.requests).padStart(6)} req${today}  ${base}${e.path}\n`);
      if (e.cost) process.stdout.write(`${' '.repeat(21)}${describeEndpointCost(e.cost)}\n`);
    }
    return 0;
  } finally {
    await conn.close();
  }
}

export async function undeployCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECT_OPTIONS } });
  if (!positionals[0]) throw new UsageError('undeploy needs the endpoint NAME');
  const conn = await connect(values);
  try {
    await conn.client.removeEndpoint(positionals[0]);
    process.stderr.write(`bytenite: endpoint ${positionals[0]} removed; its instances stop once what they hold is done\n`);
    return 0;
  } finally {
    await conn.close();
  }
}

/** `bytenite endpoint logs NAME [--follow] [--json]`: the request journal. */
export async function endpointCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'logs') throw new UsageError('bytenite endpoint logs NAME [--follow] [--json]');
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { ...CONNECT_OPTIONS, json: { type: 'boolean', default: false }, follow: { type: 'boolean', short: 'f', default: false } } });
  if (!positionals[0]) throw new UsageError('endpoint logs needs the endpoint NAME');
  const conn = await connect(values);
  const print = (r: RequestRecord) => process.stdout.write((values.json ? JSON.stringify(r) : requestLine(r)) + '\n');
  try {
    const past = await conn.client.endpointRequests(positionals[0], { limit: 1000, onRequest: values.follow ? print : undefined });
    past.forEach(print);
    if (values.follow) await new Promise<void>((resolve) => conn.client.onClosed(() => resolve()));
    return 0;
  } finally {
    await conn.close();
  }
}

function requestLine(r: RequestRecord): string {
  const wake = r.wake ? ` · ${r.wake.start} wake: admit ${r.wake.admitMs} ms, start ${r.wake.startMs} ms, ready ${r.wake.readyMs} ms` : '';
  return `${r.time} ${r.method} ${r.path} ${r.status} · ${r.bytesOut} B · held ${r.heldMs} ms · first byte ${r.firstByteMs ?? '-'} ms · total ${r.totalMs} ms${wake}${r.error ? ` · ${r.error}` : ''}`;
}

/** `cost today $0.0012, total $0.0040 · same instance time: Modal $0.0051, … · each wake keeps …`. */
export function describeEndpointCost(c: NonNullable<EndpointSummary['cost']>): string {
  const refs = c.reference.filter((r) => r.unpriced !== 'GPU machines only')
    .map((r) => `${r.name} ${formatUsd(r.total)}${r.unpriced ? ` (${r.unpriced})` : ''}`);
  return [`cost today ${formatUsd(c.today)}, total ${formatUsd(c.total)}`, ...(refs.length ? [`same instance time: ${refs.join(', ')}`] : []), c.idle.text].join(' · ');
}
