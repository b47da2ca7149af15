/**
 * ByteNite: Set Build Secret: a value for one of a Dockerfile's secret mounts (`RUN --mount=type=secret,id=ID`),
 * kept in SecretStorage and sent with each run of that Dockerfile as `bytenite run --secret` sends it.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../context';
import { secretIds } from '../dockerfiles/buildInputs';

const ID = /^[A-Za-z0-9._-]{1,128}$/;

export async function setBuildSecret(ctx: Ctx, dockerfile: vscode.Uri): Promise<void> {
  const name = vscode.workspace.asRelativePath(dockerfile, false);
  const wanted = secretIds((await vscode.workspace.openTextDocument(dockerfile)).getText());
  const stored = Object.keys(await ctx.buildSecrets.get(dockerfile));
  const items: (vscode.QuickPickItem & { id?: string })[] = [...new Set([...wanted, ...stored])].map((id) => ({
    label: id,
    description: `${stored.includes(id) ? 'set' : 'not set'}${wanted.includes(id) ? '' : ' · not mounted by the Dockerfile'}`,
    id,
  }));
  items.push({ label: '$(add) Another id…' });
  const pick = await vscode.window.showQuickPick(items, { title: `Build secret of ${name}`, placeHolder: 'The id of RUN --mount=type=secret,id=ID' });
  if (!pick) return;
  const id = pick.id ?? await vscode.window.showInputBox({
    title: `Build secret of ${name}`, prompt: 'The secret\'s id, as in RUN --mount=type=secret,id=ID',
    validateInput: (v) => (ID.test(v) ? undefined : 'Letters, digits, . _ - only'),
  });
  if (!id) return;
  const value = await vscode.window.showInputBox({
    title: `Secret "${id}" for ${name}`, password: true,
    prompt: 'Kept in VS Code\'s secret storage, sent with each run of this Dockerfile for its build only; empty removes it',
  });
  if (value === undefined) return;
  await ctx.buildSecrets.set(dockerfile, id, value === '' ? undefined : value);
  ctx.log.info(`build secret "${id}" of ${dockerfile.fsPath} ${value === '' ? 'removed' : 'set'}`);
}
