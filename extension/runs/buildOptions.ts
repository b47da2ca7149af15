/**
 * How a Dockerfile is built, settled before its run: the context folder (remembered per Dockerfile; when none
 * was chosen and the Dockerfile's COPY sources are in the workspace folder rather than its own, the workspace
 * folder is proposed before anything is uploaded), the stage when it has several named ones (a picker,
 * remembered), its build secrets from SecretStorage, the ports it forwards (portOptions.ts) and the volumes it mounts (volumeOptions.ts). Also the pickers behind the commands that change them.
 */
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../context';
import type { Publish } from '../../agent/cli/publishFlag';
import { copySources, proposeWorkspaceContext, stageNames } from '../dockerfiles/buildInputs';
import { portsFor } from './portOptions';
import { volumesFor } from './volumeOptions';
import type { VolumeMount } from '../../agent/protocol';

export interface BuildOptions {
  contextDir: string;
  target?: string;
  /** Id to value (base64). */
  buildSecrets?: Record<string, string>;
  /** Container ports forwarded to this machine while the run goes. */
  ports?: Publish[];
  /** Named volumes mounted: the Dockerfile's labels with the remembered choice over them (volumeOptions.ts). */
  volumes?: VolumeMount[];
}

const rel = (p: string) => vscode.workspace.asRelativePath(p, false);
const isFolder = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/**
 * The options of a run of `dockerfile`, asking for what was never chosen; undefined when the user cancelled.
 * `withPorts: false` (a deploy: the endpoint names its one port) skips the forwarded ports.
 */
export async function buildOptionsFor(ctx: Ctx, dockerfile: vscode.Uri, withPorts = true): Promise<BuildOptions | undefined> {
  const text = (await vscode.workspace.openTextDocument(dockerfile)).getText();
  const choice = ctx.buildChoices.get(dockerfile);
  let contextDir = choice.contextDir;
  if (contextDir !== undefined && !isFolder(contextDir)) {
    throw new Error(`The build context chosen for ${rel(dockerfile.fsPath)}, ${contextDir}, is not a folder any more: choose another with ByteNite: Choose Build Context.`);
  }
  contextDir ??= await proposeContext(ctx, dockerfile, text);
  if (contextDir === undefined) return undefined;
  let target = choice.target;
  const stages = stageNames(text);
  if (target !== undefined && target !== '' && !stages.includes(target)) target = undefined; // the stage was renamed
  if (target === undefined && stages.length > 1) {
    target = await pickStage(dockerfile, stages, choice.target);
    if (target === undefined) return undefined;
    await ctx.buildChoices.update(dockerfile, { target });
  }
  const ports = withPorts ? await portsFor(ctx, dockerfile, text) : [];
  if (ports === undefined) return undefined;
  const secrets = await ctx.buildSecrets.get(dockerfile);
  const volumes = volumesFor(ctx, dockerfile, text);
  return {
    contextDir,
    ...(target ? { target } : {}),
    ...(Object.keys(secrets).length ? { buildSecrets: secrets } : {}),
    ...(ports.length ? { ports } : {}),
    ...(volumes.length ? { volumes } : {}),
  };
}

/**
 * The Dockerfile's folder, unless its sources are only found from the workspace folder: then the user is
 * asked (and the answer remembered); undefined when the question was dismissed.
 */
async function proposeContext(ctx: Ctx, dockerfile: vscode.Uri, text: string): Promise<string | undefined> {
  const own = path.dirname(dockerfile.fsPath);
  const root = vscode.workspace.getWorkspaceFolder(dockerfile)?.uri.fsPath;
  if (!root || path.resolve(root) === path.resolve(own)) return own;
  const missing = proposeWorkspaceContext(copySources(text), (p) => existsSync(path.join(own, p)), (p) => existsSync(path.join(root, p)));
  if (!missing) return own;
  const shown = missing.slice(0, 3).join(', ') + (missing.length > 3 ? ` and ${missing.length - 3} more` : '');
  const useRoot = 'Use Workspace Folder';
  const keep = 'Keep Its Folder';
  // Modal: the run waits on the answer, and nothing is uploaded before it.
  const pick = await vscode.window.showWarningMessage(
    `${rel(dockerfile.fsPath)} copies ${shown}, not found in its folder but found in the workspace folder.`,
    { modal: true, detail: `Build it with the workspace folder as its context, as docker build -f ${rel(dockerfile.fsPath)} . would? The choice is remembered for this Dockerfile (ByteNite: Choose Build Context changes it).` },
    useRoot, keep,
  );
  if (pick === undefined) return undefined;
  const chosen = pick === useRoot ? root : own;
  await ctx.buildChoices.update(dockerfile, { contextDir: chosen });
  ctx.log.info(`build context of ${dockerfile.fsPath}: ${chosen}`);
  return chosen;
}

/** The stage picker: the whole Dockerfile (no target) or one of its named stages. */
async function pickStage(dockerfile: vscode.Uri, stages: readonly string[], current: string | undefined): Promise<string | undefined> {
  const items: (vscode.QuickPickItem & { target: string })[] = [
    { label: 'Whole Dockerfile', description: 'the last stage, as docker build without --target', target: '' },
    ...stages.map((s) => ({ label: s, description: `--target ${s}`, target: s })),
  ];
  const active = items.find((i) => i.target === (current ?? ''));
  const qp = vscode.window.createQuickPick<(typeof items)[number]>();
  qp.title = `Build which stage of ${rel(dockerfile.fsPath)}?`;
  qp.placeholder = 'Remembered for this Dockerfile (ByteNite: Choose Build Stage changes it)';
  qp.items = items;
  if (active) qp.activeItems = [active];
  return new Promise((resolve) => {
    let done = false;
    qp.onDidAccept(() => {
      const sel = qp.selectedItems[0] ?? qp.activeItems[0];
      if (!sel) return;
      done = true;
      resolve(sel.target);
      qp.dispose();
    });
    qp.onDidHide(() => {
      if (!done) resolve(undefined);
      qp.dispose();
    });
    qp.show();
  });
}

/** ByteNite: Choose Build Context: the Dockerfile's folder, the workspace folder, or another folder holding it. */
export async function chooseContext(ctx: Ctx, dockerfile: vscode.Uri): Promise<void> {
  const own = path.dirname(dockerfile.fsPath);
  const root = vscode.workspace.getWorkspaceFolder(dockerfile)?.uri.fsPath;
  const current = ctx.buildChoices.get(dockerfile).contextDir ?? own;
  const mark = (p: string) => (path.resolve(p) === path.resolve(current) ? '$(check) ' : '');
  const items: (vscode.QuickPickItem & { dir?: string })[] = [
    { label: `${mark(own)}The Dockerfile's folder`, description: rel(own) || '.', dir: own },
  ];
  if (root && path.resolve(root) !== path.resolve(own)) items.push({ label: `${mark(root)}The workspace folder`, description: rel(root) || path.basename(root), dir: root });
  items.push({ label: '$(folder) Another folder…' });
  const pick = await vscode.window.showQuickPick(items, { title: `Build context of ${rel(dockerfile.fsPath)}` });
  if (!pick) return;
  let dir = pick.dir;
  if (!dir) {
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Use as Build Context',
      defaultUri: vscode.Uri.file(root ?? own),
    });
    if (!picked?.[0]) return;
    dir = picked[0].fsPath;
  }
  const inside = path.relative(dir, dockerfile.fsPath);
  if (inside.startsWith('..') || path.isAbsolute(inside)) {
    throw new Error(`${rel(dockerfile.fsPath)} is not inside ${dir}: the build context must hold the Dockerfile. Choose a folder above it.`);
  }
  await ctx.buildChoices.update(dockerfile, { contextDir: dir });
  ctx.log.info(`build context of ${dockerfile.fsPath}: ${dir}`);
}

/** ByteNite: Choose Build Stage. */
export async function chooseStage(ctx: Ctx, dockerfile: vscode.Uri): Promise<void> {
  const stages = stageNames((await vscode.workspace.openTextDocument(dockerfile)).getText());
  if (stages.length === 0) {
    void vscode.window.showInformationMessage(`${rel(dockerfile.fsPath)} has no named stages (FROM … AS NAME): the whole Dockerfile is built.`);
    return;
  }
  const target = await pickStage(dockerfile, stages, ctx.buildChoices.get(dockerfile).target);
  if (target !== undefined) await ctx.buildChoices.update(dockerfile, { target });
}
