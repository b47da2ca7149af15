/**
 * `ByteNite: Deploy as Endpoint`: asks the name, the port, the scaling and who may call it, the hardware
 * (the run's picker), then deploys as `bytenite deploy` does: a build-only run through the shared startRun
 * (warm and incremental alike), then `endpoint.deploy` with that run's spec. Progress is a notification.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EndpointSettingsInput, EndpointSummary, HardwareRequest } from '../../agent/protocol';
import type { Ctx } from '../context';
import { exposedPorts } from '../dockerfiles/expose';
import { readHardwareLabels } from '../dockerfiles/labels';
import { pickHardware } from '../hardware/hardwarePicker';
import { fitToCatalog, formatHardware } from '../hardware/pricing';
import { buildOptionsFor } from '../runs/buildOptions';
import { buildOnce } from '../runs/buildOnce';
import { defaultEndpointName } from './endpointView';

/** What the command takes as its second argument (tests, keybindings): each one given is not asked. */
export interface DeployArgs {
  name?: string;
  port?: number;
  min?: number;
  max?: number;
  idleSeconds?: number;
  public?: boolean;
  hardware?: HardwareRequest;
}

export interface Deployed {
  name: string;
  /** The endpoint's address on the agent. */
  url: string;
  endpoint: EndpointSummary;
}

/** The CLI's defaults (agent/protocol EndpointSettings). */
const DEFAULTS = { min: 0, max: 4, idleSeconds: 60 };

export async function deployEndpoint(ctx: Ctx, uri: vscode.Uri, given: DeployArgs = {}): Promise<Deployed | undefined> {
  if (!vscode.workspace.isTrusted) throw new Error('Deploying is disabled in an untrusted workspace: trust the folder first.');
  const rel = vscode.workspace.asRelativePath(uri, false);
  const doc = await vscode.workspace.openTextDocument(uri);
  if (doc.isDirty) await doc.save();
  const text = doc.getText();
  if (readHardwareLabels(text).volumes?.length) {
    throw new Error(`${rel} has LABEL bytenite.volume: an endpoint cannot mount volumes (its instances run side by side); deploy a Dockerfile without one`);
  }
  const conn = ctx.agents.selected();
  const client = await ctx.progress(`ByteNite: connecting to ${conn.name}`, () => conn.get());
  // Asked first, as the CLI does: an agent that serves no endpoints (a Swarm) says why before anything is asked or built.
  await client.endpoints();
  const { EndpointSummary: Summary } = await import('../../agent/protocol');
  const nameSchema = Summary.shape.name;
  const title = (n: number) => `Deploy ${rel} as an endpoint on ${conn.name} (${n}/5)`;

  const name = given.name ?? await vscode.window.showInputBox({
    title: title(1), prompt: 'The endpoint\'s name: its address is /e/NAME/ on the agent',
    value: defaultEndpointName(path.basename(path.dirname(uri.fsPath))),
    validateInput: (v) => (nameSchema.safeParse(v).success ? undefined : 'Lower-case letters, digits and -, starting with a letter or digit; at most 63'),
  });
  if (!name) return undefined;
  if (!nameSchema.safeParse(name).success) throw new Error(`"${name}" cannot be an endpoint's name: lower-case letters, digits and -, at most 63`);

  const exposed = exposedPorts(text);
  const portText = given.port !== undefined ? String(given.port) : await vscode.window.showInputBox({
    title: title(2), prompt: `The container port requests go to${exposed.length ? ` (EXPOSE says ${exposed.join(', ')})` : ''}`,
    value: exposed[0] !== undefined ? String(exposed[0]) : '', placeHolder: '8000',
    validateInput: (v) => (/^\d{1,5}$/.test(v.trim()) && Number(v) >= 1 && Number(v) <= 65535 ? undefined : 'A port, 1 to 65535'),
  });
  if (!portText) return undefined;
  const port = Number(portText.trim());

  const scaling = await askScaling(title(3), given);
  if (!scaling) return undefined;

  const isPublic = given.public ?? await pickPublic(title(4));
  if (isPublic === undefined) return undefined;

  const catalog = conn.catalog!;
  let hardware = given.hardware;
  if (!hardware) {
    const current = fitToCatalog(catalog, ctx.choices.resolve(uri, text).hardware);
    hardware = (await pickHardware(catalog, current, `${title(5)}: hardware of each instance`))?.hardware;
    if (!hardware) return undefined;
  }
  const build = await buildOptionsFor(ctx, uri, false);
  if (!build) return undefined;
  const settings: EndpointSettingsInput = {
    port, min: scaling.min, max: scaling.max, idleMs: Math.round(scaling.idleSeconds * 1000), public: isPublic,
  };
  ctx.log.info(`deploy ${rel} as endpoint ${name} on "${conn.name}": ${formatHardware(hardware)}, port ${port}, ${scaling.min}..${scaling.max} instances, idle ${scaling.idleSeconds} s${isPublic ? ', public' : ''}`);

  const endpoint = await buildOnce(client, {
    title: `ByteNite: deploying ${name}`, rel, registering: 'registering the endpoint…',
    run: {
      contextDir: build.contextDir, dockerfile: uri.fsPath, hardware: hardware!, target: build.target, buildSecrets: build.buildSecrets,
      name: `deploy ${name}`,
    },
    register: (spec) => client.deployEndpoint(name, spec, settings),
  });
  const url = client.endpointUrl(endpoint.path);
  ctx.log.info(`endpoint ${name} deployed: ${url}${endpoint.cost ? ` (${endpoint.cost.idle.text})` : ''}`);
  ctx.endpoints.fireChanged();
  void vscode.window.showInformationMessage(
    `Endpoint ${name} is at ${url} (${endpoint.settings.public ? 'public' : 'needs the agent token'}).${endpoint.cost ? ` ${capitalize(endpoint.cost.idle.text)}.` : ''}`,
    'Open', 'Show Requests',
  ).then((pick) => {
    if (pick === 'Open') void vscode.commands.executeCommand('bytenite.openEndpoint', name);
    if (pick === 'Show Requests') void vscode.commands.executeCommand('bytenite.endpointLogs', name);
  });
  return { name, url, endpoint };
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

async function askScaling(title: string, given: DeployArgs): Promise<{ min: number; max: number; idleSeconds: number } | undefined> {
  if (given.min !== undefined || given.max !== undefined || given.idleSeconds !== undefined) return { ...DEFAULTS, ...strip(given) };
  const pick = await vscode.window.showQuickPick([
    { label: `Scale to zero: ${DEFAULTS.min}..${DEFAULTS.max} instances, stopped after ${DEFAULTS.idleSeconds} s idle`, description: 'the defaults', custom: false },
    { label: 'Choose min, max and idle…', custom: true },
  ], { title, placeHolder: 'How the endpoint scales' });
  if (!pick) return undefined;
  if (!pick.custom) return { ...DEFAULTS };
  const count = (prompt: string, value: number, min: number) => vscode.window.showInputBox({
    title, prompt, value: String(value),
    validateInput: (v) => (/^\d+$/.test(v) && Number(v) >= min && Number(v) <= 64 ? undefined : `A whole number, ${min} to 64`),
  });
  const minText = await count('Instances kept running with no traffic (0: scale to zero)', DEFAULTS.min, 0);
  if (minText === undefined) return undefined;
  const maxText = await count('Most instances at once', Math.max(DEFAULTS.max, Number(minText)), Math.max(1, Number(minText)));
  if (maxText === undefined) return undefined;
  const idleText = await vscode.window.showInputBox({
    title, prompt: 'Seconds with nothing in flight before an instance is stopped', value: String(DEFAULTS.idleSeconds),
    validateInput: (v) => (/^\d+(\.\d+)?$/.test(v) && Number(v) >= 0.1 && Number(v) <= 86_400 ? undefined : 'Seconds, 0.1 to 86400'),
  });
  if (idleText === undefined) return undefined;
  return { min: Number(minText), max: Number(maxText), idleSeconds: Number(idleText) };
}

function strip(g: DeployArgs): Partial<typeof DEFAULTS> {
  return Object.fromEntries(Object.entries({ min: g.min, max: g.max, idleSeconds: g.idleSeconds }).filter(([, v]) => v !== undefined));
}

async function pickPublic(title: string): Promise<boolean | undefined> {
  const pick = await vscode.window.showQuickPick([
    { label: 'With the agent token', description: 'Authorization: Bearer <token>; Open in VS Code adds it', value: false },
    { label: 'Public', description: 'anyone who reaches the agent', value: true },
  ], { title, placeHolder: 'Who may call the endpoint' });
  return pick?.value;
}
