/**
 * `bytenite schedule add NAME --cron "EXPR" … [DOCKERFILE] [-- COMMAND…]`, `bytenite schedules`, and
 * `bytenite schedule rm|run|pause|resume NAME`. Add builds as `bytenite deploy` does (a build-only run, warm
 * or incremental), then registers the schedule on the agent, which runs the image at each time.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { HardwareRequest, ScheduleFiring, ScheduleSettingsInput, ScheduleSummary } from '../protocol';
import { formatUsd } from '../cost/cost';
import { buildOnly } from './buildOnly';
import { parseCpus, parseDuration, parseGpu, parseMemory, readHardwareLabels } from '../hardware/sizes';
import { mergeVolumes, parseVolume } from '../volumes/volumeFlag';
import { connect } from './connect';
import { RunReporter } from './runReporter';
import { EXIT_NOT_RUN, UsageError, parseCount, parseEnvPair, readEnvFile } from './runCommand';

const CONNECT_OPTIONS = { agent: { type: 'string' }, 'token-file': { type: 'string' }, 'ca-file': { type: 'string' }, 'data-dir': { type: 'string' } } as const;

export const SCHEDULE_HELP = `Usage:
  bytenite schedule add NAME --cron "EXPR" [options] [DOCKERFILE] [-- COMMAND...] --agent URL --token-file FILE
  bytenite schedules [--json]                     next three times (local and UTC), last result, runs, cost
  bytenite schedule rm|run|pause|resume NAME      remove; run now, once; stop firing; fire again from now

Add builds DOCKERFILE (default ./Dockerfile) once and has the agent run it at each time of EXPR. Each
firing is an ordinary run named "schedule NAME" (bytenite runs lists it; bytenite outputs RUN fetches its
files). Schedules are kept by the agent across restarts and belong to the token's tenant.

Options of add:
  --cron "EXPR"        5 fields (min hour day month weekday), or 6 with seconds first: "*/5 * * * * *"
  --timezone TZ        IANA zone EXPR is read in (default: this machine's, ${localZone()})
  --overlap MODE       a time that finds the last run still going: skip (default; recorded as skipped),
                       queue (starts when it ends; one waits at most), allow (starts beside it)
  --catch-up MODE      times missed while the agent was down: once (default; one run for all of them,
                       recorded with the times it stands for), all (one run per time), none
  --context DIR, --cpus N, --memory SIZE, --gpu TYPE[:COUNT], --env K=V, --env-file FILE,
  --secret-env K[=V], --build-arg K=V, -u USER, --target STAGE, -v NAME:/PATH[:ro], --timeout DURATION,
  --parallel N: as for bytenite run
`;

export async function scheduleCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'add': return addCommand(rest);
    case 'rm': case 'remove': return actionCommand('rm', rest);
    case 'run': case 'pause': case 'resume': return actionCommand(sub, rest);
    case undefined: case '--help': case '-h': case 'help':
      process.stdout.write(SCHEDULE_HELP);
      return 0;
    default:
      throw new UsageError(`unknown schedule command "${sub}": add, rm, run, pause or resume`);
  }
}

async function addCommand(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const command = dash >= 0 ? argv.slice(dash + 1) : undefined;
  const { values, positionals } = parseArgs({
    args: dash >= 0 ? argv.slice(0, dash) : argv, allowPositionals: true,
    options: {
      ...CONNECT_OPTIONS, cron: { type: 'string' }, timezone: { type: 'string' }, overlap: { type: 'string' }, 'catch-up': { type: 'string' },
      context: { type: 'string' }, cpus: { type: 'string' }, memory: { type: 'string' }, gpu: { type: 'string' },
      env: { type: 'string', multiple: true }, 'env-file': { type: 'string', multiple: true },
      'secret-env': { type: 'string', multiple: true }, 'build-arg': { type: 'string', multiple: true },
      user: { type: 'string', short: 'u' }, target: { type: 'string' }, volume: { type: 'string', short: 'v', multiple: true },
      timeout: { type: 'string' }, parallel: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(SCHEDULE_HELP);
    return 0;
  }
  const [name, file, ...more] = positionals;
  if (more.length) throw new UsageError(`one Dockerfile at a time; got ${[file, ...more].join(', ')} (put the command after --)`);
  if (!name || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw new UsageError('schedule add needs a NAME: lower-case letters, digits and -, at most 63');
  if (!values.cron) throw new UsageError('schedule add needs --cron "EXPR", e.g. --cron "0 2 * * *" (02:00 daily) or "*/30 * * * * *" (every 30 s)');
  const overlap = oneOf(values.overlap, '--overlap', ['skip', 'queue', 'allow'] as const);
  const catchUp = oneOf(values['catch-up'], '--catch-up', ['none', 'once', 'all'] as const);
  const settings: ScheduleSettingsInput = {
    cron: values.cron, timezone: values.timezone ?? localZone(), ...(overlap ? { overlap } : {}), ...(catchUp ? { catchUp } : {}),
  };
  const dockerfile = path.resolve(file ?? 'Dockerfile');
  if (!existsSync(dockerfile)) throw new UsageError(`no Dockerfile at ${dockerfile}`);
  const labels = readHardwareLabels(await readFile(dockerfile, 'utf8'));
  const hardware: HardwareRequest = {
    cpus: values.cpus ? usage(() => parseCpus(values.cpus!)) : labels.cpus ?? 1,
    memoryMiB: values.memory ? usage(() => parseMemory(values.memory!)) : labels.memoryMiB ?? 1024,
  };
  const gpu = values.gpu ? usage(() => parseGpu(values.gpu!)) : labels.gpu;
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
  const volumes = mergeVolumes(labels.volumes ?? [], (values.volume ?? []).map((v) => usage(() => parseVolume(v))));
  const timeoutMs = values.timeout ? usage(() => parseDuration(values.timeout!)) : undefined;
  const parallel = values.parallel === undefined ? undefined : parseCount(values.parallel, '--parallel', 1, 256);

  const reporter = new RunReporter({ json: values.json!, tty: Boolean(process.stderr.isTTY), stdout: process.stdout, stderr: process.stderr });
  const conn = await connect(values);
  try {
    // Asked first, so an agent that keeps no schedules (the embedded one) says why before a build.
    await conn.client.schedules();
    const spec = await buildOnly(conn.client, reporter, {
      contextDir: path.resolve(values.context ?? path.dirname(dockerfile)), dockerfile, hardware, buildArgs, env, secretEnv, command,
      user: values.user, target: values.target, volumes: volumes.length ? volumes : undefined, timeoutMs, parallel,
      name: `schedule ${name} (build)`,
    });
    if (!spec) return EXIT_NOT_RUN;
    const s = await conn.client.addSchedule(name, spec, settings);
    if (values.json) process.stdout.write(JSON.stringify({ type: 'schedule', schedule: s }) + '\n');
    else process.stdout.write(describeSchedule(s));
    process.stderr.write(`bytenite: schedule ${name} added (overlap ${s.settings.overlap}, catch-up ${s.settings.catchUp})\n`);
    return 0;
  } catch (err) {
    reporter.error((err as Error).message);
    return EXIT_NOT_RUN;
  } finally {
    await conn.close();
  }
}

export async function schedulesCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...CONNECT_OPTIONS, json: { type: 'boolean', default: false } } });
  const conn = await connect(values);
  try {
    const list = await conn.client.schedules();
    if (values.json) {
      for (const s of list) process.stdout.write(JSON.stringify(s) + '\n');
      return 0;
    }
    if (!list.length) process.stderr.write('no schedules on this agent (bytenite schedule add NAME --cron "EXPR" makes one)\n');
    for (const s of list) process.stdout.write(describeSchedule(s));
    return 0;
  } finally {
    await conn.close();
  }
}

async function actionCommand(action: 'rm' | 'run' | 'pause' | 'resume', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECT_OPTIONS, json: { type: 'boolean', default: false } } });
  const name = positionals[0];
  if (!name) throw new UsageError(`schedule ${action} needs the schedule NAME`);
  const conn = await connect(values);
  try {
    if (action === 'rm') {
      await conn.client.removeSchedule(name);
      process.stderr.write(`bytenite: schedule ${name} removed; a run it started goes on\n`);
      return 0;
    }
    const s = await conn.client.scheduleAction(action, name);
    if (values.json) process.stdout.write(JSON.stringify(s) + '\n');
    else if (action === 'run') process.stdout.write(`${s.last ? firingLine(s.last) : 'nothing started'}\n`);
    else process.stdout.write(describeSchedule(s));
    return action === 'run' && s.last?.result === 'refused' ? EXIT_NOT_RUN : 0;
  } catch (err) {
    process.stderr.write(`bytenite: ${(err as Error).message}\n`);
    return EXIT_NOT_RUN;
  } finally {
    await conn.close();
  }
}

/** Three lines or so: the rule and totals, the next times (local and UTC), the last result. */
export function describeSchedule(s: ScheduleSummary): string {
  const head = `${s.name.padEnd(20)} ${s.paused ? 'paused' : 'active'}  "${s.settings.cron}" ${s.timezone}  ` +
    `runs ${s.runs} · skipped ${s.skipped} · cost ${formatUsd(s.cost)}`;
  const next = s.next.length ? s.next.map((t) => `${localTime(t)} (${t.replace('.000', '')})`).join(', ') : s.paused ? 'none while paused' : 'none';
  return `${head}\n  next  ${next}\n  last  ${s.last ? firingLine(s.last) : 'not fired yet'}\n`;
}

function firingLine(f: ScheduleFiring): string {
  const result = f.result === 'exited' ? `exited ${f.exitCode}` : f.result;
  const parts = [result, `${f.trigger} ${f.time.replace('.000', '')}`];
  if (f.runId) parts.push(f.runId);
  if (f.cost !== undefined) parts.push(formatUsd(f.cost));
  if (f.standsFor && f.standsFor.length > 1) parts.push(`stands for ${f.standsFor.length} missed times`);
  if (f.reason) parts.push(f.reason);
  return parts.join(' · ');
}

/** `2025-03-30 03:00:00 GMT+2` in this machine's zone. */
function localTime(iso: string): string {
  const d = new Date(iso);
  const f = new Intl.DateTimeFormat('sv-SE', { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
  return f.format(d);
}

function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function oneOf<T extends string>(value: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} ${value}: one of ${allowed.join(', ')}`);
  return value as T;
}

function usage<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
