/**
 * Every command, as a table of small factories registered in one loop (ids `bytenite.<verb>`; titles and
 * palette visibility are in package.json). Errors become a short message with a button to the output.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { HardwareRequest } from '../agent/protocol';
import { config, LOCAL_AGENT } from './config';
import type { Ctx } from './context';
import { isDockerfileName } from './dockerfiles/patterns';
import { pickHardware } from './hardware/hardwarePicker';
import { fitToCatalog, formatHardware } from './hardware/pricing';
import { formatBytes } from '../agent/hardware/sizes';
import { errorMessage, showError } from './log';
import { SIDEBAR_VIEW_ID } from './views/sidebar';
import { buildOptionsFor, chooseContext, chooseStage } from './runs/buildOptions';
import { setBuildSecret } from './runs/setBuildSecret';
import { choosePorts } from './runs/portOptions';
import { chooseVolumes, pickVolumes, rememberVolumes } from './runs/volumeOptions';
import { scheduleDockerfile, type ScheduleArgs } from './schedules/scheduleDockerfile';
import { deployEndpoint, type DeployArgs } from './endpoints/deployEndpoint';
import { endpointCommands } from './endpoints/endpointCommands';
import { scheduleCommands } from './schedules/scheduleCommands';
import { SHELL_COMMAND } from './shell/shellChannel';

export type Command = (...args: any[]) => unknown;
export type CommandFactories = Record<string, (ctx: Ctx) => Command>;

export const commands: CommandFactories = {
  runDockerfile: (ctx) => async (arg?: vscode.Uri) => {
    const uri = await dockerfileArg(ctx, arg, 'Run which Dockerfile on ByteNite?');
    if (!uri) return undefined;
    const hardware = await hardwareFor(ctx, uri, true);
    if (!hardware) return undefined;
    return startAndShow(ctx, uri, hardware);
  },

  /** The same, titled for the explorer and editor menus (hidden from the palette, where Run Dockerfile is). */
  runOnByteNite: (ctx) => (arg?: vscode.Uri) => commands.runDockerfile(ctx)(arg),

  runAgain: (ctx) => async (runId?: string) => {
    const commandAt = Date.now();
    const entry = runId ? ctx.store.historyEntry(runId) : ctx.store.latest();
    if (!entry) {
      void vscode.window.showInformationMessage('No run to repeat yet: run a Dockerfile first.');
      return undefined;
    }
    // In the repeated run's panel when it has one (and it finished): the log starts over there.
    return startAndShow(ctx, vscode.Uri.parse(entry.dockerfile), entry.hardware, entry.info.runId, commandAt);
  },

  /**
   * CodeLens, palette, a run panel's Watch button (a run id): Run on Save on or off for a Dockerfile (the
   * opposite of now, or `on`). Resolves with the new state (undefined when no Dockerfile was picked).
   */
  toggleRunOnSave: (ctx) => async (arg?: vscode.Uri | string, on?: boolean) => {
    const entry = typeof arg === 'string' ? ctx.store.historyEntry(arg) : undefined;
    if (typeof arg === 'string' && !entry) throw new Error(`unknown run ${arg}`);
    const uri = entry ? vscode.Uri.parse(entry.dockerfile) : await dockerfileArg(ctx, arg, 'Run which Dockerfile on save?');
    if (!uri) return undefined;
    on = await ctx.watches.toggle(uri, on);
    vscode.window.setStatusBarMessage(`ByteNite: Run on Save ${on ? 'on' : 'off'} for ${vscode.workspace.asRelativePath(uri, false)}`, 3000);
    return on;
  },

  stopRun: (ctx) => async (runId?: string) => {
    const active = ctx.store.activeRuns();
    let run = runId ? ctx.store.get(runId) : active.length === 1 ? active[0] : undefined;
    if (!run && !runId) {
      if (!active.length) {
        void vscode.window.showInformationMessage('No run in progress.');
        return;
      }
      const pick = await vscode.window.showQuickPick(
        active.map((r) => ({ label: r.info.name, description: `${r.state} · ${r.info.hardware}`, run: r })),
        { title: 'Stop which run?' },
      );
      run = pick?.run;
    }
    if (run?.active) await ctx.runner.stop(run);
  },

  chooseHardware: (ctx) => async (arg?: vscode.Uri) => {
    const uri = await dockerfileArg(ctx, arg, 'Choose hardware for which Dockerfile?');
    if (uri) await chooseHardware(ctx, uri);
  },

  chooseBuildContext: (ctx) => async (arg?: vscode.Uri) => {
    const uri = await dockerfileArg(ctx, arg, 'Choose the build context of which Dockerfile?');
    if (uri) await chooseContext(ctx, uri);
  },

  chooseBuildStage: (ctx) => async (arg?: vscode.Uri) => {
    const uri = await dockerfileArg(ctx, arg, 'Choose the stage of which Dockerfile?');
    if (uri) await chooseStage(ctx, uri);
  },

  choosePorts: (ctx) => async (arg?: vscode.Uri) => {
    const uri = await dockerfileArg(ctx, arg, 'Choose the forwarded ports of which Dockerfile?');
    if (uri) await choosePorts(ctx, uri);
  },

  /**
   * From the run panel, the CodeLens or the palette: a forwarded port in the browser. Through
   * asExternalUri, so in remote VS Code and code-server the browser gets an address it can reach.
   */
  openPort: (ctx) => async (runId?: string, containerPort?: number) => {
    const runs = runId ? [ctx.store.get(runId)].filter((r) => r !== undefined) : ctx.store.activeRuns();
    const ready = runs.flatMap((r) => r.ports.filter((p) => p.state === 'ready' && (containerPort === undefined || p.containerPort === containerPort)));
    const waiting = runs.some((r) => r.ports.some((p) => p.state === 'waiting' && (containerPort === undefined || p.containerPort === containerPort)));
    if (!ready.length) {
      void vscode.window.showInformationMessage(waiting
        ? 'The container does not accept connections on that port yet: Open works once it does.'
        : 'No forwarded port of a run in progress. Choose ports with ByteNite: Choose Forwarded Ports, then run.');
      return;
    }
    const port = ready.length === 1 ? ready[0] : (await vscode.window.showQuickPick(
      ready.map((p) => ({ label: `:${p.containerPort}`, description: p.url, p })), { title: 'Open which port?' }))?.p;
    if (!port) return;
    const external = await vscode.env.asExternalUri(vscode.Uri.parse(`${port.url}/`));
    ctx.log.info(`open port ${port.containerPort} of the run: ${port.url} (${external.toString(true)})`);
    await vscode.env.openExternal(external);
  },

  /** Palette, CodeLens: the named volumes runs of a Dockerfile mount (second argument: the `-v` values, not asked). */
  chooseVolumes: (ctx) => async (arg?: vscode.Uri, given?: string[]) => {
    const uri = await dockerfileArg(ctx, arg, 'Choose the volumes of which Dockerfile?');
    if (!uri) return undefined;
    const mounts = await chooseVolumes(ctx, uri, given);
    ctx.codeLens.refresh();
    return mounts;
  },

  /** From the sidebar's volume row or the palette: asks, then removes a volume and its data. `confirmed` skips the question. */
  removeVolume: (ctx) => async (name?: string, confirmed?: boolean) => {
    const client = await ctx.agents.selected().get(15_000);
    if (!name) {
      const listed = (await client.volumes()).volumes;
      if (!listed.length) {
        void vscode.window.showInformationMessage(`No volume on agent "${ctx.agents.selectedName()}".`);
        return false;
      }
      name = (await vscode.window.showQuickPick(listed.map((v) => ({ label: v.name, description: formatBytes(v.sizeBytes) })), { title: 'Remove which volume?' }))?.label;
      if (!name) return false;
    }
    if (confirmed !== true) {
      const ok = await vscode.window.showWarningMessage(`Remove volume ${name} and everything in it?`, { modal: true, detail: 'Runs that mount it later start with an empty one.' }, 'Remove');
      if (ok !== 'Remove') return false;
    }
    await client.removeVolume(name);
    ctx.log.info(`volume ${name} removed`);
    ctx.sidebar.forgetDisk();
    return true;
  },

  /** Palette, CodeLens: build a Dockerfile once and have the agent run it at cron times (second argument: answers not to ask). */
  scheduleDockerfile: (ctx) => async (arg?: vscode.Uri, given?: ScheduleArgs) => {
    const uri = await dockerfileArg(ctx, arg, 'Schedule which Dockerfile?');
    return uri ? scheduleDockerfile(ctx, uri, given) : undefined;
  },

  /** Palette, CodeLens, explorer: build the Dockerfile and serve it at /e/NAME/ (second argument: answers not to ask). */
  deployEndpoint: (ctx) => async (arg?: vscode.Uri, given?: DeployArgs) => {
    const uri = await dockerfileArg(ctx, arg, 'Deploy which Dockerfile as an endpoint?');
    return uri ? deployEndpoint(ctx, uri, given) : undefined;
  },

  setBuildSecret: (ctx) => async (arg?: vscode.Uri) => {
    const uri = await dockerfileArg(ctx, arg, 'Set a build secret of which Dockerfile?');
    if (uri) await setBuildSecret(ctx, uri);
  },

  selectAgent: (ctx) => async () => {
    const current = ctx.agents.selectedName();
    const items: (vscode.QuickPickItem & { name?: string })[] = ctx.agents.names().map((name) => ({
      label: name === current ? `$(check) ${name}` : name, description: ctx.agents.describe(name), name,
    }));
    items.push({ label: '$(add) Add Remote Agent…' });
    const pick = await vscode.window.showQuickPick(items, { title: 'Run on which ByteNite agent?' });
    if (!pick) return;
    if (!pick.name) return vscode.commands.executeCommand('bytenite.addRemoteAgent');
    await ctx.agents.select(pick.name);
    void ctx.agents.selected().connect().catch(() => {});
  },

  addRemoteAgent: (ctx) => async () => {
    const taken = new Set(ctx.agents.names());
    const name = await vscode.window.showInputBox({
      title: 'Add Remote Agent (1/3)', prompt: 'A name for the agent', placeHolder: 'gpu-box',
      validateInput: (v) => (!/^[\w.-]{1,64}$/.test(v) ? 'Letters, digits, . _ - only' : taken.has(v) ? 'That name is taken' : undefined),
    });
    if (!name) return;
    const url = await vscode.window.showInputBox({
      title: 'Add Remote Agent (2/3)', prompt: 'The agent URL', placeHolder: 'wss://agent.example.com:7777',
      validateInput: (v) => (/^wss?:\/\/[^\s/]+/.test(v) ? undefined : 'Expected ws://host:port or wss://host:port'),
    });
    if (!url) return;
    const token = await vscode.window.showInputBox({
      title: 'Add Remote Agent (3/3)', prompt: 'The agent token (kept in VS Code\'s secret storage, not in settings)', password: true,
    });
    if (token === undefined) return;
    if (token) await ctx.tokens.set(name, token);
    await config.setRemoteAgents([...config.remoteAgents(), { name, url }]);
    await ctx.agents.select(name);
    void ctx.agents.selected().connect().catch(() => {});
  },

  setAgentToken: (ctx) => async (name?: string) => {
    const remotes = config.remoteAgents().map((a) => a.name);
    if (!remotes.length) {
      void vscode.window.showInformationMessage('No remote agent yet; the local agent makes its own token. Add one with ByteNite: Add Remote Agent.');
      return;
    }
    name ??= remotes.length === 1 ? remotes[0] : await vscode.window.showQuickPick(remotes, { title: 'Set the token of which agent?' });
    if (!name) return;
    const token = await vscode.window.showInputBox({ title: `Token for agent "${name}"`, password: true, prompt: 'Kept in VS Code\'s secret storage' });
    if (!token) return;
    await ctx.tokens.set(name, token);
    ctx.agents.reset(name);
    void ctx.agents.connection(name).connect().catch(() => {});
  },

  showRuns: () => () => vscode.commands.executeCommand(`${SIDEBAR_VIEW_ID}.focus`),

  startLocalAgent: (ctx) => async () => {
    await ctx.progress('ByteNite: starting the local agent', () => ctx.agents.startLocal());
    if (ctx.agents.selectedName() !== LOCAL_AGENT) await ctx.agents.select(LOCAL_AGENT);
  },

  stopLocalAgent: (ctx) => async () => {
    if (ctx.store.activeRuns().some((r) => r.info.agent === LOCAL_AGENT)) {
      const ok = await vscode.window.showWarningMessage('Runs are going on the local agent; stopping it ends them.', 'Stop Agent');
      if (ok !== 'Stop Agent') return;
    }
    await ctx.agents.stopLocal();
  },

  showOutput: (ctx) => () => ctx.log.show(),

  /** From a CodeLens, the sidebar or a panel: open (or reveal) a run's panel. */
  openRun: (ctx) => (runId: string) => ctx.panels.open(runId),

  /**
   * A terminal inside a running run's container (from the run panel, the sidebar's run menu, or with a run id),
   * or, from the palette, one picked among the selected agent's running runs, or a fresh container of a
   * Dockerfile on hardware picked as for a run. Resolves with the run id.
   */
  openShell: (ctx) => async (arg?: string | { runId?: string } | { dockerfile: vscode.Uri; hardware?: HardwareRequest }) => {
    if (arg && typeof arg === 'object' && 'dockerfile' in arg) return shellInNewContainer(ctx, arg.dockerfile, arg.hardware);
    let runId = typeof arg === 'string' ? arg : arg?.runId;
    if (!runId) {
      const agent = ctx.agents.selectedName();
      const running = ctx.store.activeRuns().filter((r) => r.info.agent === agent && r.state === 'running');
      const items: (vscode.QuickPickItem & { runId?: string })[] = running.map((r) => ({
        label: `$(terminal) ${r.info.name}`, description: `${r.runId} · ${formatHardware(r.hardware)}`, runId: r.runId,
      }));
      items.push({ label: '$(add) New container from a Dockerfile…', description: `on ${agent}` });
      const pick = await vscode.window.showQuickPick(items, {
        title: running.length ? `Open a shell in which run on ${agent}?` : `No run is running on ${agent}: open a shell in a new container?`,
      });
      if (!pick) return undefined;
      if (!pick.runId) return shellInNewContainer(ctx);
      runId = pick.runId;
    }
    const run = ctx.store.get(runId) ?? (await ctx.runner.restore(ctx.store.historyEntry(runId) ?? missing(runId)));
    if (!run) throw new Error(`run ${runId} is not known to its agent any more`);
    if (!run.active) throw new Error(`run ${runId} has ended (${run.state}): a shell opens only inside a running run`);
    if (run.state !== 'running') throw new Error(`run ${runId} is ${run.state}: a shell opens once its container runs`);
    ctx.shells.execInto(run);
    return runId;
  },

  /** From a run panel: fetch the run's output files into the workspace and reveal them. */
  openOutputs: (ctx) => async (runId: string) => {
    const entry = ctx.store.historyEntry(runId);
    if (!entry) throw new Error(`unknown run ${runId}`);
    const { dir, files } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'ByteNite: fetching outputs' }, (p) => {
      let shown = 0;
      return ctx.runner.fetchOutputs(runId, vscode.Uri.parse(entry.dockerfile), entry.info.agent, (received, total) => {
        if (Date.now() - shown < 250) return;
        shown = Date.now();
        p.report({ message: `${formatBytes(received)}${total ? ` of ${formatBytes(total)}` : ''}` });
      });
    });
    if (files === 0) {
      void vscode.window.showInformationMessage('The run left no files in its output folder ($BYTENITE_OUTPUT_DIR).');
      return;
    }
    await vscode.commands.executeCommand('revealInExplorer', dir);
    void offerDockerignore(ctx, vscode.Uri.parse(entry.dockerfile), dir);
  },

  ...scheduleCommands,
  ...endpointCommands,
};

/** Registers every command; returns nothing to dispose separately (all go to the subscriptions). */
export function registerCommands(ctx: Ctx): void {
  // A watch's next run: the hardware remembered now (a choice or the labels, never a picker), in the last run's panel.
  ctx.watches.setStarter(async (uri, from) => {
    const hardware = await hardwareFor(ctx, uri, false);
    return hardware ? startAndShow(ctx, uri, hardware, from) : undefined;
  });
  for (const [name, factory] of Object.entries(commands)) {
    const fn = factory(ctx);
    ctx.ext.subscriptions.push(vscode.commands.registerCommand(`bytenite.${name}`, async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        showError(ctx.log, `ByteNite: ${errorMessage(err)}`, err);
        return undefined;
      }
    }));
  }
}

/**
 * Outputs land in `bytenite-out/`; when that is inside the Dockerfile's build context, every new output
 * changes the context digest and the next run starts cold. Offer (once per folder) to ignore it.
 */
async function offerDockerignore(ctx: Ctx, dockerfile: vscode.Uri, outDir: vscode.Uri): Promise<void> {
  const chosen = ctx.buildChoices.get(dockerfile).contextDir;
  const contextDir = chosen ? vscode.Uri.file(chosen) : vscode.Uri.joinPath(dockerfile, '..');
  const outRoot = vscode.Uri.joinPath(outDir, '..');
  const rel = path.relative(contextDir.fsPath, outRoot.fsPath);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return;
  const ignoreFile = vscode.Uri.joinPath(contextDir, '.dockerignore');
  let text = '';
  try {
    text = Buffer.from(await vscode.workspace.fs.readFile(ignoreFile)).toString('utf8');
  } catch {
    // no .dockerignore yet
  }
  const entry = `${rel.split(path.sep).join('/')}/`;
  if (text.split(/\r?\n/).some((l) => l.trim().replace(/^\//, '').replace(/\/$/, '') === entry.slice(0, -1))) return;
  const pick = await vscode.window.showInformationMessage(
    `${entry} is inside the build context of ${vscode.workspace.asRelativePath(dockerfile, false)}: outputs there make the next run start cold. Add it to .dockerignore?`,
    'Add to .dockerignore',
  );
  if (pick !== 'Add to .dockerignore') return;
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  await vscode.workspace.fs.writeFile(ignoreFile, Buffer.from(`${text}${sep}${entry}\n`));
}

function missing(runId: string): never {
  throw new Error(`no run ${runId} in this window's run history`);
}

/** Open Shell's "New container from a Dockerfile…": an interactive run of a shell, in a ByteNite terminal. */
async function shellInNewContainer(ctx: Ctx, dockerfile?: vscode.Uri, hardware?: HardwareRequest): Promise<string | undefined> {
  const uri = await dockerfileArg(ctx, dockerfile, 'A shell in a new container of which Dockerfile?');
  if (!uri) return undefined;
  const conn = ctx.agents.selected();
  const client = await ctx.progress(`ByteNite: connecting to ${conn.name}`, () => conn.get());
  if (!client.hello.capabilities.includes('interactive')) throw new Error(`agent "${conn.name}" cannot run interactive programs (it is older than this extension)`);
  hardware ??= await chooseHardware(ctx, uri);
  if (!hardware) return undefined;
  const build = await buildOptionsFor(ctx, uri);
  if (!build) return undefined;
  const hw = hardware;
  const run = await ctx.shells.newContainer(conn.name, formatHardware(hw), (size) => ctx.runner.start(uri, hw, 1, build, {
    command: SHELL_COMMAND, interactive: { tty: true, ...(size.cols && size.rows ? { cols: size.cols, rows: size.rows } : {}) },
  }), (r) => ctx.runner.stop(r));
  return run?.runId;
}

async function startAndShow(ctx: Ctx, uri: vscode.Uri, hardware: HardwareRequest, reuseFrom?: string, commandAt = Date.now()): Promise<string | undefined> {
  const parallel = ctx.choices.parallel(uri);
  const build = await buildOptionsFor(ctx, uri);
  if (!build) return undefined;
  const optionsAt = Date.now();
  const run = await ctx.progress(`ByteNite: starting ${vscode.workspace.asRelativePath(uri, false)}`, () => ctx.runner.start(uri, hardware, parallel, build));
  run.marks.commandAt = commandAt;
  run.marks.optionsAt = optionsAt;
  if (!reuseFrom || !ctx.panels.reuse(reuseFrom, run.runId, true)) ctx.panels.open(run.runId, true);
  return run.runId;
}

/** The Dockerfile a command is about: its argument, the active editor, or the user's pick. */
async function dockerfileArg(ctx: Ctx, arg: unknown, title: string): Promise<vscode.Uri | undefined> {
  if (arg instanceof vscode.Uri) return arg;
  const active = vscode.window.activeTextEditor?.document;
  const files = await ctx.dockerfiles.list();
  if (active && (active.languageId === 'dockerfile' || isDockerfileName(active.fileName)) && files.length <= 1) return active.uri;
  if (files.length === 0) {
    void vscode.window.showInformationMessage('No Dockerfile in this workspace. Create one (the ByteNite snippets can help) and try again.');
    return undefined;
  }
  if (files.length === 1) return files[0];
  const activeKey = active?.uri.toString();
  const pick = await vscode.window.showQuickPick(
    files.map((uri) => ({ label: vscode.workspace.asRelativePath(uri, false), uri, picked: uri.toString() === activeKey })),
    { title },
  );
  return pick?.uri;
}

/**
 * Hardware for a run: the remembered choice or the Dockerfile's labels, fitted to the agent's catalog.
 * With neither (a first run), the picker opens so the price is seen before anything is spent.
 */
async function hardwareFor(ctx: Ctx, uri: vscode.Uri, askIfDefault: boolean): Promise<HardwareRequest | undefined> {
  const doc = await vscode.workspace.openTextDocument(uri);
  const { hardware, source } = ctx.choices.resolve(uri, doc.getText());
  if (source === 'default' && askIfDefault) return chooseHardware(ctx, uri);
  const conn = ctx.agents.selected();
  await ctx.progress(`ByteNite: connecting to ${conn.name}`, () => conn.get());
  return conn.catalog ? fitToCatalog(conn.catalog, hardware) : hardware;
}

async function chooseHardware(ctx: Ctx, uri: vscode.Uri): Promise<HardwareRequest | undefined> {
  const conn = ctx.agents.selected();
  const client = await ctx.progress(`ByteNite: connecting to ${conn.name}`, () => conn.get());
  const catalog = conn.catalog!;
  const doc = await vscode.workspace.openTextDocument(uri);
  const current = fitToCatalog(catalog, ctx.choices.resolve(uri, doc.getText()).hardware);
  // The fan-out step only where the agent can run it.
  const parallel = client.hello.capabilities.includes('fan-out') ? ctx.choices.parallel(uri) : undefined;
  const picked = await pickHardware(catalog, current, `Hardware for ${vscode.workspace.asRelativePath(uri, false)} on ${conn.name}`, parallel);
  if (!picked) return undefined;
  // The volume step ends the picker the first time (No volume by default); ByteNite: Choose Volumes changes it later.
  if (ctx.buildChoices.get(uri).volumes === undefined && client.hello.capabilities.includes('volumes')) {
    const volumes = await pickVolumes(client, uri, []);
    if (volumes === undefined) return undefined;
    await rememberVolumes(ctx, uri, volumes);
    ctx.codeLens.refresh();
  }
  await ctx.choices.remember(uri, picked.hardware, parallel === undefined ? undefined : picked.parallel);
  ctx.log.info(`hardware for ${uri.fsPath}: ${formatHardware(picked.hardware)}${picked.parallel > 1 ? ` × ${picked.parallel} tasks` : ''}`);
  return picked.hardware;
}
