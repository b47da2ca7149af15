/**
 * The named volumes a run of a Dockerfile mounts: its `LABEL bytenite.volume=NAME:/path` (read as the CLI reads
 * it) with the user's choice over it, remembered per Dockerfile as `-v` values (`cache:/data`, `models:/m:ro`;
 * [] chosen as none, absent never asked). The volume step is one quick pick: "No volume" (the default), the
 * tenant's existing volumes (then the path), or NAME:/path[:ro] typed in. It is asked as the last step of the
 * first run's picker (commands.ts) and by ByteNite: Choose Volumes.
 */
import * as vscode from 'vscode';
import type { AgentClient } from '../../agent/client/agentClient';
import type { VolumeMount } from '../../agent/protocol';
import { formatBytes } from '../../agent/hardware/sizes';
import { mergeVolumes, parseVolume } from '../../agent/volumes/volumeFlag';
import type { Ctx } from '../context';
import { readHardwareLabels } from '../dockerfiles/labels';
import { formatUsd } from '../hardware/pricing';

const rel = (uri: vscode.Uri) => vscode.workspace.asRelativePath(uri, false);

/** What a run of `dockerfile` mounts now: the labels' volumes, a chosen one for the same path replacing it. */
export function volumesFor(ctx: Ctx, dockerfile: vscode.Uri, text: string): VolumeMount[] {
  const chosen = (ctx.buildChoices.get(dockerfile).volumes ?? []).map((v) => parseVolume(v));
  return mergeVolumes(readHardwareLabels(text).volumes ?? [], chosen);
}

/** `-v` syntax of a mount, as it is remembered and shown. */
export const volumeText = (m: VolumeMount) => `${m.name}:${m.path}${m.readOnly ? ':ro' : ''}`;

/** Checks `-v` values (throws the CLI's own message for a bad one) and remembers them for the Dockerfile. */
export async function rememberVolumes(ctx: Ctx, dockerfile: vscode.Uri, values: string[]): Promise<VolumeMount[]> {
  const mounts = values.map((v) => parseVolume(v.trim()));
  await ctx.buildChoices.update(dockerfile, { volumes: mounts.map(volumeText) });
  ctx.log.info(`volumes of ${dockerfile.fsPath}: ${mounts.map(volumeText).join(', ') || 'none'}`);
  return mounts;
}

type VolumeItem = vscode.QuickPickItem & { none?: true; existing?: string; typed?: string };

/**
 * The volume step: resolves with the `-v` values picked ([] for none), or undefined when dismissed. Only on an
 * agent that offers `volumes`; elsewhere it resolves with [] without asking.
 */
export async function pickVolumes(client: AgentClient, dockerfile: vscode.Uri, current: string[]): Promise<string[] | undefined> {
  if (!client.hello.capabilities.includes('volumes')) return [];
  const listed = await client.volumes().catch(() => undefined);
  const base: VolumeItem[] = [
    { label: 'No volume', description: 'nothing kept between runs (the default)', none: true },
    ...(listed?.volumes ?? []).map((v): VolumeItem => ({
      label: `$(database) ${v.name}`, description: `${formatBytes(v.sizeBytes)} · ${formatUsd(v.monthlyCost)}/month`,
      detail: v.inUse.length ? `in use by ${v.inUse.map((u) => u.runId).join(', ')}` : undefined, existing: v.name,
    })),
  ];
  const qp = vscode.window.createQuickPick<VolumeItem>();
  qp.title = `Mount a volume in runs of ${rel(dockerfile)}?`;
  qp.placeholder = 'Pick a volume, or type NAME:/path[:ro] (a new name is made on first use); remembered for this Dockerfile';
  qp.items = base;
  qp.activeItems = [base.find((i) => current.length && i.existing === current[0].split(':')[0]) ?? base[0]];
  // What is typed becomes the first item once it reads as NAME:/path[:ro]; otherwise the reason shows under it.
  qp.onDidChangeValue((v) => {
    const t = v.trim();
    if (!t.includes(':')) {
      qp.items = base;
      return;
    }
    let item: VolumeItem;
    try {
      const m = parseVolume(t);
      item = { label: `$(add) Mount ${m.name} at ${m.path}${m.readOnly ? ' read-only' : ''}`, description: t, typed: volumeText(m), alwaysShow: true };
    } catch (err) {
      item = { label: `$(warning) ${(err as Error).message}`, alwaysShow: true };
    }
    qp.items = [item, ...base];
    qp.activeItems = [item];
  });
  const picked = await new Promise<VolumeItem | undefined>((resolve) => {
    let done = false;
    qp.onDidAccept(() => {
      const sel = qp.selectedItems[0] ?? qp.activeItems[0];
      if (!sel || (!sel.none && !sel.existing && !sel.typed)) return;
      done = true;
      resolve(sel);
      qp.dispose();
    });
    qp.onDidHide(() => {
      if (!done) resolve(undefined);
      qp.dispose();
    });
    qp.show();
  });
  if (!picked) return undefined;
  if (picked.none) return [];
  if (picked.typed) return [picked.typed];
  const path = await vscode.window.showInputBox({
    title: `Mount volume ${picked.existing} in ${rel(dockerfile)} at`, prompt: 'An absolute path in the container; add :ro to mount it read-only',
    value: '/data', validateInput: (v) => {
      try {
        parseVolume(`${picked.existing}:${v.trim()}`);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  });
  return path === undefined ? undefined : [`${picked.existing}:${path.trim()}`];
}

/**
 * ByteNite: Choose Volumes (and the first run's step). `given`: the `-v` values to remember without asking
 * (tests, keybindings). Resolves with what is remembered now, or undefined when the step was dismissed.
 */
export async function chooseVolumes(ctx: Ctx, dockerfile: vscode.Uri, given?: string[]): Promise<VolumeMount[] | undefined> {
  if (given) return rememberVolumes(ctx, dockerfile, given);
  const conn = ctx.agents.selected();
  const client = await ctx.progress(`ByteNite: connecting to ${conn.name}`, () => conn.get());
  const picked = await pickVolumes(client, dockerfile, ctx.buildChoices.get(dockerfile).volumes ?? []);
  return picked === undefined ? undefined : rememberVolumes(ctx, dockerfile, picked);
}
