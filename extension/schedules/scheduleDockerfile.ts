/**
 * `ByteNite: Schedule…`: asks the name, the times (presets or a cron expression), the time zone, the rules for
 * overlapping and missed times and the hardware (the run's picker), then does what `bytenite schedule add`
 * does: a build-only run through the shared startRun (warm or incremental), then `schedule.add` with that run's
 * spec. Progress is a notification; the answer says the next time.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { HardwareRequest, ScheduleSettingsInput, ScheduleSummary } from '../../agent/protocol';
import type { Ctx } from '../context';
import { pickHardware } from '../hardware/hardwarePicker';
import { fitToCatalog, formatHardware } from '../hardware/pricing';
import { buildOptionsFor } from '../runs/buildOptions';
import { buildOnce } from '../runs/buildOnce';
import { localTimeText } from './scheduleRows';
import { SCHEDULE_NAME as NAME, defaultScheduleName } from './scheduleNames';

/** What the command takes as its second argument (tests, keybindings): each one given is not asked. */
export interface ScheduleArgs {
  name?: string;
  cron?: string;
  timezone?: string;
  overlap?: 'skip' | 'queue' | 'allow';
  catchUp?: 'none' | 'once' | 'all';
  hardware?: HardwareRequest;
}

/** The cron presets of the second step; "Custom…" asks for an expression. */
export const CRON_PRESETS: readonly { label: string; cron: string }[] = [
  { label: 'Every hour', cron: '0 * * * *' },
  { label: 'Every day at 02:00', cron: '0 2 * * *' },
  { label: 'Every 15 minutes', cron: '*/15 * * * *' },
];


export const localZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

export async function scheduleDockerfile(ctx: Ctx, uri: vscode.Uri, given: ScheduleArgs = {}): Promise<ScheduleSummary | undefined> {
  if (!vscode.workspace.isTrusted) throw new Error('Scheduling is disabled in an untrusted workspace: trust the folder first.');
  const rel = vscode.workspace.asRelativePath(uri, false);
  const doc = await vscode.workspace.openTextDocument(uri);
  if (doc.isDirty) await doc.save();
  const conn = ctx.agents.selected();
  const client = await ctx.progress(`ByteNite: connecting to ${conn.name}`, () => conn.get());
  // Asked first, as the CLI does: an agent that keeps no schedules says why before anything is asked or built.
  await client.schedules();
  const { checkCron, nextTimes } = await import('../../agent/schedules/policy');
  // Five steps and the hardware's: a click elsewhere (to look at the Dockerfile) must not lose them; Escape cancels.
  const title = (n: number) => `Schedule ${rel} on ${conn.name} (${n}/5)`;

  const folder = path.basename(path.dirname(uri.fsPath));
  const name = given.name ?? await vscode.window.showInputBox({
    title: title(1), ignoreFocusOut: true, prompt: 'The schedule\'s name: its runs are named "schedule NAME"',
    value: defaultScheduleName(folder),
    validateInput: (v) => (NAME.test(v) ? undefined : 'Lower-case letters, digits and -, starting with a letter or digit; at most 63'),
  });
  if (!name) return undefined;
  if (!NAME.test(name)) throw new Error(`"${name}" cannot be a schedule's name: lower-case letters, digits and -, at most 63`);

  const timezoneDefault = given.timezone ?? localZone();
  const cron = given.cron ?? await pickCron(title(2), timezoneDefault, checkCron, nextTimes);
  if (!cron) return undefined;

  const timezone = given.timezone ?? await vscode.window.showInputBox({
    title: title(3), ignoreFocusOut: true, prompt: `The IANA time zone "${cron}" is read in (this machine's is ${localZone()})`, value: timezoneDefault,
    validateInput: (v) => checkCron({ cron, timezone: v.trim() }),
  });
  if (!timezone) return undefined;
  const problem = checkCron({ cron, timezone });
  if (problem) throw new Error(problem);

  const rules = await pickRules(title(4), given);
  if (!rules) return undefined;

  const catalog = conn.catalog!;
  let hardware = given.hardware;
  if (!hardware) {
    const current = fitToCatalog(catalog, ctx.choices.resolve(uri, doc.getText()).hardware);
    hardware = (await pickHardware(catalog, current, `${title(5)}: hardware of each run`))?.hardware;
    if (!hardware) return undefined;
  }
  // No forwards: nobody is there to open a scheduled run's ports. The volumes are the Dockerfile's (labels and choice).
  const build = await buildOptionsFor(ctx, uri, false);
  if (!build) return undefined;
  const settings: ScheduleSettingsInput = { cron, timezone: timezone.trim(), overlap: rules.overlap, catchUp: rules.catchUp };
  ctx.log.info(`schedule ${rel} as ${name} on "${conn.name}": "${cron}" ${settings.timezone}, overlap ${rules.overlap}, catch-up ${rules.catchUp}, ${formatHardware(hardware)}`);

  const schedule = await buildOnce(client, {
    title: `ByteNite: scheduling ${name}`, rel, registering: 'registering the schedule…',
    run: {
      contextDir: build.contextDir, dockerfile: uri.fsPath, hardware: hardware!, target: build.target, buildSecrets: build.buildSecrets,
      volumes: build.volumes, name: `schedule ${name} (build)`,
    },
    register: (spec) => client.addSchedule(name, spec, settings),
  });
  const next = schedule.next[0];
  ctx.log.info(`schedule ${name} added: next ${next ?? 'none'}`);
  ctx.schedules.fireChanged();
  void vscode.window.showInformationMessage(
    `Schedule ${name} added: next run ${next ? localTimeText(next) : 'never'} (${schedule.settings.cron}, ${schedule.timezone}).`, 'Show Schedules',
  ).then((pick) => pick && vscode.commands.executeCommand('bytenite.showRuns'));
  return schedule;
}

type CheckCron = (s: { cron: string; timezone: string }) => string | undefined;
type NextTimes = (s: { cron: string; timezone: string }, n: number, from: Date) => Date[];

async function pickCron(title: string, timezone: string, check: CheckCron, next: NextTimes): Promise<string | undefined> {
  const nextText = (cron: string) => {
    try {
      const t = next({ cron, timezone }, 1, new Date())[0];
      return t ? `next ${localTimeText(t.toISOString())}` : 'never fires';
    } catch {
      return '';
    }
  };
  const pick = await vscode.window.showQuickPick([
    ...CRON_PRESETS.map((p) => ({ label: p.label, description: `${p.cron} · ${nextText(p.cron)}`, cron: p.cron })),
    { label: 'Custom…', description: 'a cron expression: 5 fields, or 6 with seconds first', cron: undefined },
  ], { title, ignoreFocusOut: true, placeHolder: 'When it runs' });
  if (!pick) return undefined;
  if (pick.cron) return pick.cron;
  const cron = await vscode.window.showInputBox({
    title, ignoreFocusOut: true, prompt: 'min hour day month weekday (e.g. 30 6 * * 1-5), or seconds first (*/30 * * * * *)', placeHolder: '0 2 * * *',
    validateInput: (v) => {
      const problem = check({ cron: v.trim(), timezone });
      return problem ? { message: problem, severity: vscode.InputBoxValidationSeverity.Error } : { message: nextText(v.trim()), severity: vscode.InputBoxValidationSeverity.Info };
    },
  });
  return cron?.trim() || undefined;
}

async function pickRules(title: string, given: ScheduleArgs): Promise<{ overlap: 'skip' | 'queue' | 'allow'; catchUp: 'none' | 'once' | 'all' } | undefined> {
  if (given.overlap || given.catchUp) return { overlap: given.overlap ?? 'skip', catchUp: given.catchUp ?? 'once' };
  const pick = await vscode.window.showQuickPick([
    { label: 'Skip overlapping times, catch up once', description: 'the defaults', custom: false },
    { label: 'Choose…', description: 'queue or allow overlaps; catch up every missed time, or none', custom: true },
  ], { title, ignoreFocusOut: true, placeHolder: 'A time that finds the last run still going, and times missed while the agent was down' });
  if (!pick) return undefined;
  if (!pick.custom) return { overlap: 'skip', catchUp: 'once' };
  const overlap = await vscode.window.showQuickPick([
    { label: 'skip', description: 'record the time as skipped (default)' },
    { label: 'queue', description: 'start it when the last run ends (one waits at most)' },
    { label: 'allow', description: 'start it beside the last run' },
  ], { title, ignoreFocusOut: true, placeHolder: 'A time that finds the last run still going' });
  if (!overlap) return undefined;
  const catchUp = await vscode.window.showQuickPick([
    { label: 'once', description: 'one run for all the missed times (default)' },
    { label: 'all', description: 'one run per missed time (the latest 100)' },
    { label: 'none', description: 'record them as skipped' },
  ], { title, ignoreFocusOut: true, placeHolder: 'Times missed while the agent was down' });
  if (!catchUp) return undefined;
  return { overlap: overlap.label as 'skip' | 'queue' | 'allow', catchUp: catchUp.label as 'none' | 'once' | 'all' };
}
