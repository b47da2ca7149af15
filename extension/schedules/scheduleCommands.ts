/**
 * The commands that act on one of the selected agent's schedules (Run now, Pause, Resume, Remove): from the
 * sidebar's row with its name, or from the palette with a pick. `ByteNite: Schedule…` itself is in
 * schedules/scheduleDockerfile.ts.
 */
import * as vscode from 'vscode';
import type { CommandFactories } from '../commands';
import type { Ctx } from '../context';

export const scheduleCommands: CommandFactories = {
  /** Runs a schedule now, once (under its overlap rule); resolves with the run started, if one was. */
  runSchedule: (ctx) => async (name?: string) => {
    const n = await scheduleArg(ctx, name, 'Run which schedule now?');
    if (!n) return undefined;
    const s = await ctx.schedules.act('run', n);
    const last = s?.last;
    if (last?.runId) {
      ctx.log.info(`schedule ${n} run now: ${last.runId}`);
      return last.runId;
    }
    void vscode.window.showWarningMessage(`Schedule ${n} started nothing: ${last?.result ?? 'no answer'}${last?.reason ? ` (${last.reason})` : ''}.`);
    return undefined;
  },

  pauseSchedule: (ctx) => async (name?: string) => {
    const n = await scheduleArg(ctx, name, 'Pause which schedule?');
    return n ? ctx.schedules.act('pause', n) : undefined;
  },

  resumeSchedule: (ctx) => async (name?: string) => {
    const n = await scheduleArg(ctx, name, 'Resume which schedule?');
    return n ? ctx.schedules.act('resume', n) : undefined;
  },

  /** Asks, then removes a schedule (a run it started goes on). `confirmed` skips the question. */
  removeSchedule: (ctx) => async (name?: string, confirmed?: boolean) => {
    const n = await scheduleArg(ctx, name, 'Remove which schedule?');
    if (!n) return false;
    if (confirmed !== true) {
      const ok = await vscode.window.showWarningMessage(`Remove schedule ${n}?`, { modal: true, detail: 'It fires no more; a run it started goes on, and its past runs stay in the history.' }, 'Remove');
      if (ok !== 'Remove') return false;
    }
    await ctx.schedules.act('remove', n);
    ctx.log.info(`schedule ${n} removed`);
    return true;
  },
};

/** The schedule a command is about: its name, or the user's pick among the selected agent's. */
async function scheduleArg(ctx: Ctx, name: string | undefined, title: string): Promise<string | undefined> {
  if (name) return name;
  const client = await ctx.schedules.client(15_000);
  if (!client) throw new Error(`agent "${ctx.agents.selectedName()}" keeps no schedules`);
  const list = await client.schedules();
  if (!list.length) {
    void vscode.window.showInformationMessage(`No schedule on agent "${ctx.agents.selectedName()}" yet: add one with ByteNite: Schedule….`);
    return undefined;
  }
  return list.length === 1 ? list[0].name : (await vscode.window.showQuickPick(list.map((s) => s.name), { title }));
}
