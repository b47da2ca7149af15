/**
 * Which of a run's container ports are forwarded to this machine while it runs. Filled from the
 * Dockerfile's EXPOSE lines the first time (a multi-select, all ticked, same port number locally) and
 * remembered per Dockerfile as `-p` values; ByteNite: Choose Forwarded Ports edits them in `-p` syntax.
 */
import * as vscode from 'vscode';
import { parsePublish, type Publish } from '../../agent/cli/publishFlag';
import type { Ctx } from '../context';
import { exposedPorts } from '../dockerfiles/expose';

const rel = (uri: vscode.Uri) => vscode.workspace.asRelativePath(uri, false);

/** The forwards of a run of `dockerfile`; asks on its first run when it EXPOSEs ports. Undefined: cancelled. */
export async function portsFor(ctx: Ctx, dockerfile: vscode.Uri, text: string): Promise<Publish[] | undefined> {
  let chosen = ctx.buildChoices.get(dockerfile).ports;
  if (chosen === undefined) {
    const exposed = exposedPorts(text);
    if (exposed.length === 0) return [];
    const picked = await pickExposed(dockerfile, exposed);
    if (picked === undefined) return undefined;
    chosen = picked.map((p) => `${p}:${p}`);
    await ctx.buildChoices.update(dockerfile, { ports: chosen });
    ctx.log.info(`forwarded ports of ${dockerfile.fsPath}: ${chosen.join(', ') || 'none'}`);
  }
  return chosen.map(parsePublish);
}

async function pickExposed(dockerfile: vscode.Uri, exposed: number[]): Promise<number[] | undefined> {
  const items = exposed.map((port) => ({ label: `Port ${port}`, description: `to http://127.0.0.1:${port} on this machine`, picked: true, port }));
  const qp = vscode.window.createQuickPick<(typeof items)[number]>();
  qp.title = `Forward which ports of ${rel(dockerfile)} while it runs?`;
  qp.placeholder = 'From its EXPOSE lines; remembered for this Dockerfile (ByteNite: Choose Forwarded Ports changes it)';
  qp.canSelectMany = true;
  qp.items = items;
  qp.selectedItems = items;
  return new Promise((resolve) => {
    let done = false;
    qp.onDidAccept(() => {
      done = true;
      resolve(qp.selectedItems.map((i) => i.port));
      qp.dispose();
    });
    qp.onDidHide(() => {
      if (!done) resolve(undefined);
      qp.dispose();
    });
    qp.show();
  });
}

/** ByteNite: Choose Forwarded Ports: the list in `-p` syntax, empty for none. */
export async function choosePorts(ctx: Ctx, dockerfile: vscode.Uri): Promise<void> {
  const text = (await vscode.workspace.openTextDocument(dockerfile)).getText();
  const current = ctx.buildChoices.get(dockerfile).ports ?? exposedPorts(text).map((p) => `${p}:${p}`);
  const value = await vscode.window.showInputBox({
    title: `Ports of ${rel(dockerfile)} forwarded while it runs`,
    prompt: 'As docker run -p writes them, separated by commas: 8000 (a free local port), 8080:80, 0.0.0.0:8080:80. Empty: none.',
    value: current.join(', '),
    validateInput: (v) => {
      try {
        splitPorts(v).forEach(parsePublish);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  });
  if (value === undefined) return;
  const ports = splitPorts(value);
  await ctx.buildChoices.update(dockerfile, { ports });
  ctx.log.info(`forwarded ports of ${dockerfile.fsPath}: ${ports.join(', ') || 'none'}`);
}

function splitPorts(v: string): string[] {
  return v.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);
}
