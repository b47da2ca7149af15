/**
 * `bytenite run [DOCKERFILE] [options] [-- COMMAND...]`: build and run a Dockerfile on an agent (the
 * embedded local one by default) and exit with the container's exit code, or 125 when the run could not
 * happen, as `docker run` does.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { HardwareRequest } from '../protocol';
import { startRun } from '../client/startRun';
import { fetchOutputs } from '../client/fetchOutputs';
import { formatBytes, parseCpus, parseDuration, parseGpu, parseMemory, readHardwareLabels } from '../hardware/sizes';
import { connect } from './connect';
import { RunReporter } from './runReporter';
import { trace } from './trace';
import { readBuildSecret } from './buildSecretFlag';
import { forwardUrl, parsePublish, type Publish } from './publishFlag';
import { PortForwards } from '../client/portForward';
import { ContextWatcher } from './contextWatcher';
import { mergeVolumes, parseVolume } from '../volumes/volumeFlag';
import { INTERACTIVE_HELP, InteractiveLinker, interactiveSpec } from './interactiveRun';

export const RUN_HELP = `Usage: bytenite run [DOCKERFILE] [options] [-- COMMAND...]

Builds DOCKERFILE (default ./Dockerfile) with its folder as context and runs it on an agent.
Without --agent, an agent runs inside this process on the local Docker Engine.

Options:
  --context DIR        build context (default: the Dockerfile's folder)
  --cpus N             vCPUs (default: LABEL bytenite.cpus, else 1)
  --memory SIZE        memory limit, e.g. 512m, 4g (default: LABEL bytenite.memory, else 1g)
  --gpu TYPE[:COUNT]   GPUs, e.g. h100:2 (default: LABEL bytenite.gpu, else none)
  --env K=V            environment variable (repeatable; K alone takes it from this shell)
  --env-file FILE      environment variables, one K=V a line
  --secret-env K[=V]   like --env, but the value is never logged or echoed
  --build-arg K=V      build argument (repeatable)
  -u, --user USER      run as this user (name or uid, optionally :group), as docker run --user;
                       default: the image's USER. The output folder belongs to this user
  --secret id=ID[,src=FILE|,env=VAR]
                       build secret for RUN --mount=type=secret,id=ID (repeatable; Docker's syntax): held
                       in memory for the build only, never in the image, logs or the agent's journal
  --target STAGE       build up to this stage of a multi-stage Dockerfile
  --no-cache           build cold, without the engine's build cache
  -p, --publish [IP:][LOCAL:]CONTAINER
                       forward a local port to a port of the container, through the agent (repeatable;
                       docker run -p's syntax): listens on 127.0.0.1 unless IP is given; no LOCAL: a free
                       port. Announced once the container's port accepts a connection
  -v, --volume NAME:/PATH[:ro]
                       mount the named volume NAME of your tenant on the agent at PATH (repeatable;
                       docker run -v's syntax; default: LABEL bytenite.volume=NAME:/PATH). Made on first
                       use, kept across runs; one read-write run at a time (others wait), :ro ones
                       share. Host paths are refused. See bytenite volumes
  --timeout DURATION   stop the run after this long, e.g. 30s, 10m
\${INTERACTIVE_HELP}  --parallel N         fan out: N tasks of the same image (one build), each with BYTENITE_TASK_INDEX
                       (0..N-1) and BYTENITE_TASK_COUNT; logs labelled [task N], outputs in task-N/,
                       exit code the first non-zero task exit code (by index), cost summed over tasks
  --task K             with --parallel: show only task K's output (the run is the same)
  --out DIR            where output files come back (default: ./bytenite-out/RUN_ID)
  --agent URL          a remote agent, ws:// or wss://
  --token-file FILE    the agent's token (or set BYTENITE_TOKEN)
  --ca-file FILE       CA certificate (PEM) to verify a wss:// agent's self-signed certificate
  --data-dir DIR       data folder of the embedded agent
  --json               print the run's protocol events on stdout, one JSON object a line
  --watch              run again when the context (as .dockerignore leaves it) or the Dockerfile changes:
                       the run in progress is stopped (SIGTERM, then its grace), and the next one uploads
                       only what changed. Ctrl-C ends the watch
`;

export class UsageError extends Error {}

async function asUsageAsync<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A flag value that cannot be read is a usage error (exit 2), not a failed run. */
function asUsage<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Exit status when the run could not happen at all (agent, build or engine error), as docker uses it. */
export const EXIT_NOT_RUN = 125;

export function parseEnvPair(pair: string, flag: string): [string, string] {
  const eq = pair.indexOf('=');
  if (eq === 0) throw new UsageError(`${flag} ${pair}: the name is missing`);
  if (eq < 0) {
    const v = process.env[pair];
    if (v === undefined) throw new UsageError(`${flag} ${pair}: no value given and none set in this shell`);
    return [pair, v];
  }
  return [pair.slice(0, eq), pair.slice(eq + 1)];
}

/** docker's --env-file format: K=V lines, `#` comments, a bare K takes the value from the shell. */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const raw of (await readFile(file, 'utf8')).split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [k, v] = parseEnvPair(line, `--env-file ${file}:`);
    env[k] = v;
  }
  return env;
}

/** A whole number flag between `min` and `max` (`--parallel 4`, `--task 0`). */
export function parseCount(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new UsageError(`${flag} ${text}: give a whole number from ${min} to ${max}${flag === '--task' ? ' (a task index of the run\'s --parallel tasks)' : ''}`);
  }
  return n;
}

export async function runCommand(argv: string[]): Promise<number> {
  trace('loaded');
  const dash = argv.indexOf('--');
  const command = dash >= 0 ? argv.slice(dash + 1) : undefined;
  const { values, positionals } = parseArgs({
    args: dash >= 0 ? argv.slice(0, dash) : argv,
    allowPositionals: true,
    options: {
      context: { type: 'string' }, cpus: { type: 'string' }, memory: { type: 'string' }, gpu: { type: 'string' },
      env: { type: 'string', multiple: true }, 'env-file': { type: 'string', multiple: true },
      'secret-env': { type: 'string', multiple: true }, 'build-arg': { type: 'string', multiple: true },
      user: { type: 'string', short: 'u' }, timeout: { type: 'string' }, parallel: { type: 'string' }, task: { type: 'string' }, out: { type: 'string' }, agent: { type: 'string' }, 'token-file': { type: 'string' },
      'ca-file': { type: 'string' }, secret: { type: 'string', multiple: true }, target: { type: 'string' },
      'no-cache': { type: 'boolean', default: false }, publish: { type: 'string', short: 'p', multiple: true },
      'data-dir': { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
      watch: { type: 'boolean', default: false }, volume: { type: 'string', short: 'v', multiple: true },
      interactive: { type: 'boolean', short: 'i', default: false }, tty: { type: 'boolean', short: 't', default: false },
      'idle-timeout': { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(RUN_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`one Dockerfile at a time; got ${positionals.join(', ')} (put the command after --)`);
  const dockerfile = path.resolve(positionals[0] ?? 'Dockerfile');
  if (!existsSync(dockerfile)) throw new UsageError(`no Dockerfile at ${dockerfile}`);
  const contextDir = path.resolve(values.context ?? path.dirname(dockerfile));

  const labels = readHardwareLabels(await readFile(dockerfile, 'utf8'));
  const hardware: HardwareRequest = {
    cpus: values.cpus ? asUsage(() => parseCpus(values.cpus!)) : labels.cpus ?? 1,
    memoryMiB: values.memory ? asUsage(() => parseMemory(values.memory!)) : labels.memoryMiB ?? 1024,
  };
  const gpu = values.gpu ? (values.gpu === 'none' ? undefined : asUsage(() => parseGpu(values.gpu!))) : labels.gpu;
  if (gpu) hardware.gpu = gpu;

  const env: Record<string, string> = {};
  for (const f of values['env-file'] ?? []) Object.assign(env, await readEnvFile(f));
  for (const pair of values.env ?? []) {
    const [k, v] = parseEnvPair(pair, '--env');
    env[k] = v;
  }
  const secretEnv: string[] = [];
  for (const pair of values['secret-env'] ?? []) {
    const [k, v] = parseEnvPair(pair, '--secret-env');
    env[k] = v;
    secretEnv.push(k);
  }
  const buildArgs: Record<string, string> = {};
  for (const pair of values['build-arg'] ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--build-arg ${pair}: use K=V`);
    buildArgs[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const buildSecrets: Record<string, string> = {};
  for (const flag of values.secret ?? []) {
    const [id, value] = await asUsageAsync(() => readBuildSecret(flag));
    buildSecrets[id] = value.toString('base64');
  }
  if (values.target !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(values.target)) {
    throw new UsageError(`--target ${values.target}: a stage name (letters, digits, . _ -)`);
  }
  const volumes = mergeVolumes(labels.volumes ?? [], (values.volume ?? []).map((v) => asUsage(() => parseVolume(v))));
  const timeoutMs = values.timeout ? asUsage(() => parseDuration(values.timeout!)) : undefined;
  const parallel = values.parallel === undefined ? 1 : parseCount(values.parallel, '--parallel', 1, 256);
  const task = values.task === undefined ? undefined : parseCount(values.task, '--task', 0, parallel - 1);

  const interactive = interactiveSpec(values, { parallel, watch: Boolean(values.watch), json: Boolean(values.json) });
  const publishes: Publish[] = (values.publish ?? []).map((p) => asUsage(() => parsePublish(p)));
  if (values.watch && publishes.length) throw new UsageError('--watch with -p is not supported yet: forward the port with bytenite attach RUN -p … per run');
  if (values.watch && values.out) throw new UsageError('--watch with --out: each run of a watch writes its outputs to bytenite-out/RUN_ID');

  // A raw terminal does not turn \n into \r\n: the CLI's own lines end with both while the program has it.
  const reporter = new RunReporter({ json: values.json!, tty: Boolean(process.stderr.isTTY), stdout: process.stdout, stderr: process.stderr, task, crlf: Boolean(interactive?.tty) });
  for (const p of labels.problems) reporter.error(`Dockerfile label ${p}`);

  const connecting = connect({ agent: values.agent, 'token-file': values['token-file'], 'ca-file': values['ca-file'], 'data-dir': values['data-dir'] });
  connecting.catch(() => {}); // awaited below
  const linker = interactive ? new InteractiveLinker(interactive.tty, () => connecting.then((c) => c.client), (line) => reporter.error(line)) : undefined;
  let forwards: PortForwards | undefined;
  let forwardsRunId = '';
  if (publishes.length) {
    try {
      // Listening before anything starts: a port in use fails the command before a run exists, as docker run -p does.
      forwards = await PortForwards.listen(publishes, {
        tunnel: (runId, port, t) => connecting.then((c) => c.client.tunnel(runId, port, t)), task,
        // The embedded agent is this process, a standalone one may offer raw TCP: both skip the WebSocket.
        dial: (runId, port, t) => connecting.then((c) => (c.dial ? c.dial(runId, port, t) : null)),
        onReady: (f, ms) => reporter.forwardReady(forwardsRunId, { host: f.host, port: f.boundPort, url: forwardUrl(f.host, f.boundPort) }, f.containerPort, ms),
        onNote: (line) => reporter.note(line),
      });
    } catch (err) {
      reporter.error((err as Error).message);
      void connecting.then((c) => c.close(), () => {});
      return EXIT_NOT_RUN;
    }
  }
  // Started before the connection is open: the context is listed and hashed meanwhile (see startRun).
  const begin = () => startRun(connecting.then((c) => c.client), {
    contextDir, dockerfile, hardware, buildArgs, env, secretEnv, command, timeoutMs, parallel, user: values.user, volumes, interactive,
    target: values.target, noCache: values['no-cache'], buildSecrets: Object.keys(buildSecrets).length ? buildSecrets : undefined,
    name: path.relative(process.cwd(), dockerfile) || 'Dockerfile',
    ports: publishes.length ? [...new Set(publishes.map((p) => p.containerPort))] : undefined,
    onEvent: (seq, e, id) => {
      if (e.kind === 'log') trace('first log');
      linker?.event(id, e);
      reporter.event(id, seq, e);
      if (forwards) {
        forwardsRunId = id;
        forwards.setRun(id);
        forwards.event(e);
      }
    },
  });
  let conn: Awaited<typeof connecting> | undefined;
  let runId = '';
  let running = false;
  let interrupted = 0;
  // The watch: a change cancels the run in progress, or ends the wait between runs.
  let restart: string | undefined;
  let wake: (() => void) | undefined;
  const changed = (what: string) => {
    const first = restart === undefined;
    restart = what;
    if (running && runId && first) {
      reporter.note(`${what} changed: stopping ${runId} to run again`);
      conn?.client.cancel(runId).catch(() => {});
    }
    wake?.();
  };
  const watcher = values.watch ? new ContextWatcher(contextDir, dockerfile, (what) => changed(what), [path.resolve('bytenite-out')]) : undefined;
  watcher?.mark();
  let starting = begin();
  starting.catch(() => {}); // awaited below, once the connection is known to be open
  try {
    conn = await connecting;
  } catch (err) {
    forwards?.close('no agent');
    watcher?.close();
    reporter.error((err as Error).message);
    return EXIT_NOT_RUN;
  }
  trace('connected');
  const live = conn;
  const { client } = live;
  const onSigint = () => {
    interrupted++;
    wake?.();
    if (interrupted === 1 && running && runId) {
      reporter.note(`stopping the run${watcher ? ' and the watch' : ''} (Ctrl-C again to leave it)`);
      client.cancel(runId).catch(() => {});
    } else if (!(interrupted === 1 && watcher)) {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    for (;;) {
      running = true;
      const code = await oneRun();
      running = false;
      if (!watcher) return code;
      if (interrupted) return 130;
      if (restart === undefined) {
        reporter.note(`watching ${path.relative(process.cwd(), contextDir) || '.'} for changes (Ctrl-C to stop)`);
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        if (interrupted) return 130;
      }
      reporter.note(`${restart} changed: running again`);
      restart = undefined;
      watcher.mark();
      starting = begin();
      starting.catch(() => {});
    }
  } finally {
    linker?.close();
    process.off('SIGINT', onSigint);
    watcher?.close();
    forwards?.close('the command ended');
    await live.close();
  }

  async function oneRun(): Promise<number> {
  try {
    const started = await starting;
    trace('accepted');
    runId = started.runId;
    const out = path.resolve(values.out ?? path.join('bytenite-out', runId));
    // Asked for now: the agent sends the archive as it copies it out of the stopped container, and the
    // files are written here meanwhile, instead of after the run's end.
    const fetching = fetchOutputs({
      runId, outDir: out, wait: true, connect: () => live.current(),
      onProgress: throttle((n, total) => reporter.downloading(n, total), 200),
      onResume: (offset, why) => reporter.note(`outputs download cut (${why}); resuming at ${formatBytes(offset)}`),
    });
    fetching.catch(() => {});
    const final = await started.done;
    let fetchFailed = false;
    try {
      const got = await fetching;
      if (got.files > 0 && !values.json) {
        reporter.note(`${got.files} output file(s) in ${path.relative(process.cwd(), out) || '.'}`);
        // Files written into the context change its digest: the next run would be cold for no reason.
        if (!values.out && !path.relative(contextDir, out).startsWith('..')) {
          reporter.note('bytenite-out/ is inside the build context: add it to .dockerignore to keep warm starts');
        }
      }
    } catch (err) {
      fetchFailed = true;
      // The final event already said why outputs were not kept; anything else is said here.
      if (!final.outputs.notKept) reporter.error((err as Error).message);
    }
    if (final.kind === 'failed' && final.exitCode === null) return EXIT_NOT_RUN;
    // A program that succeeded but whose result did not reach this machine did not do what was asked.
    if (final.exitCode === 0 && (final.outputs.notKept || fetchFailed)) return EXIT_NOT_RUN;
    return final.exitCode ?? EXIT_NOT_RUN;
  } catch (err) {
    reporter.error((err as Error).message);
    return EXIT_NOT_RUN;
  }
  }
}

/** Calls `fn` at most once per `ms` (the last call in a burst may be dropped: progress only). */
function throttle<A extends unknown[]>(fn: (...a: A) => void, ms: number): (...a: A) => void {
  let last = 0;
  return (...a) => {
    const now = Date.now();
    if (now - last < ms) return;
    last = now;
    fn(...a);
  };
}
