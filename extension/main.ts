/** Entry point: wiring only. Everything lives in Ctx; commands are a table. */
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { Ctx } from './context';
import type { Catalog } from '../agent/protocol';
import type { EndpointLogLine, EndpointRowView, RequestRecord, RunRowView, ScheduleRowView, VolumeView, WatchPanelState } from '../webview/protocol';
import { cpuItems, gpuItems, memoryItems } from './hardware/hardwarePicker';

/** What activate returns: read by the extension-host tests, not a public API. */
export interface ByteNiteApi {
  activationMs: number;
  catalog(): Promise<Catalog>;
  pickerLabels(): Promise<{ cpus: string[]; memory: string[]; gpu: string[] }>;
  run(runId: string): {
    state: string; final?: unknown; logs: string[]; costUsd: number;
    /** The log events, with the task of a fan-out run. */
    logEvents: { task?: number; stream: string; data: string }[];
  } | undefined;
  /** Remembers a Dockerfile's build context and stage, as Choose Build Context / Choose Build Stage do. */
  setBuildChoice(dockerfile: vscode.Uri, choice: { contextDir?: string; target?: string }): Promise<void>;
  /** Keeps a build secret for a Dockerfile, as Set Build Secret does. */
  setBuildSecret(dockerfile: vscode.Uri, id: string, value: string | undefined): Promise<void>;
  /** Remembers the number of parallel tasks for a Dockerfile, as the hardware picker's last step does. */
  setParallel(dockerfile: vscode.Uri, parallel: number): Promise<void>;
  /** The selected agent's connection state (`connected`, `retrying`, `failed`...). */
  agentState(): string;
  /** The engine the selected agent runs on, as it describes it, once connected. */
  agentEngine(): string | undefined;
  /** Why the selected agent is not connected, when it is not. */
  agentProblem(): string | undefined;
  /** Workspace-relative paths of the Dockerfiles found. */
  dockerfiles(): Promise<string[]>;
  /** Pid of the local agent process, when it runs. */
  localAgentPid(): number | undefined;
  /** The run rows the sidebar shows. */
  runRows(): Promise<RunRowView[]>;
  /** Forgets the extension's own run history (agents keep theirs). */
  forgetRuns(): Promise<void>;
  /** The schedule rows the sidebar shows, with their runs (undefined: the agent keeps none). */
  scheduleRows(): Promise<ScheduleRowView[] | undefined>;
  /** The volume rows the sidebar shows, with their sizes (asked again at most every 10 s). */
  volumeRows(): Promise<VolumeView[] | undefined>;
  /** The endpoint rows the sidebar shows (undefined: the agent serves none). */
  endpointRows(): Promise<EndpointRowView[] | undefined>;
  /** The address Open gives the browser for an endpoint (a local forward with the token, or its own when public). */
  endpointBrowserUrl(name: string): Promise<string | undefined>;
  /** What the endpoint's panel was sent: requests, instance log lines, instance run ids. */
  endpointPanel(name: string): { requests: RequestRecord[]; logs: EndpointLogLine[]; instances: string[] } | undefined;
  /**
   * The latest ByteNite terminal opened on a run (Open Shell), while it is open: what it has shown, the size
   * VS Code gave it, and its Pseudoterminal's `setDimensions`, as VS Code calls it when the panel resizes.
   */
  shell(runId: string): {
    transcript: string; size?: { cols: number; rows: number }; ended: boolean; exitCode?: number;
    setDimensions(cols: number, rows: number): void;
  } | undefined;
  /** What the panel now showing `runId` was last told of Run on Save: its toggle and the earlier runs of the watch. */
  panelWatch(runId: string): WatchPanelState | undefined;
}

export function activate(ext: vscode.ExtensionContext): ByteNiteApi {
  const t0 = performance.now();
  const ctx: Ctx = new Ctx(ext, {
    restore: async (runId) => {
      const entry = ctx.store.historyEntry(runId);
      return entry ? ctx.runner.restore(entry) : undefined;
    },
    stop: (runId) => vscode.commands.executeCommand('bytenite.stopRun', runId) as Promise<void>,
    runAgain: (runId) => vscode.commands.executeCommand('bytenite.runAgain', runId) as Promise<void>,
    openOutputs: (runId) => vscode.commands.executeCommand('bytenite.openOutputs', runId) as Promise<void>,
    openPort: (runId, port) => vscode.commands.executeCommand('bytenite.openPort', runId, port) as Promise<void>,
    openShell: async (runId) => void (await vscode.commands.executeCommand('bytenite.openShell', runId)),
    toggleWatch: async (runId) => { await vscode.commands.executeCommand('bytenite.toggleRunOnSave', runId); },
    watch: (runId) => ctx.watches.panelState(runId),
  });
  registerCommands(ctx);
  // Connect in the background so the status bar, CodeLens prices and sidebar fill in; activation does not wait.
  if (vscode.workspace.isTrusted) setTimeout(() => void ctx.agents.selected().connect().catch(() => {}), 0);
  else ext.subscriptions.push(vscode.workspace.onDidGrantWorkspaceTrust(() => void ctx.agents.selected().connect().catch(() => {})));
  const activationMs = performance.now() - t0;
  ctx.log.info(`activated in ${activationMs.toFixed(1)} ms`);

  const catalog = async () => {
    const conn = ctx.agents.selected();
    await conn.get();
    return conn.catalog!;
  };
  return {
    activationMs,
    catalog,
    async pickerLabels() {
      const c = await catalog();
      return { cpus: cpuItems(c).map((i) => i.label), memory: memoryItems(c).map((i) => i.label), gpu: gpuItems(c).map((i) => i.label) };
    },
    run(runId) {
      const r = ctx.store.get(runId);
      if (!r) return undefined;
      const logEvents = r.events.flatMap((e) => (e.event.kind === 'log' ? [{ task: e.event.task, stream: e.event.stream, data: e.event.data }] : []));
      return { state: r.state, final: r.final, logs: logEvents.map((e) => e.data), logEvents, costUsd: r.costUsd };
    },
    agentState: () => ctx.agents.selected().state.kind,
    agentEngine: () => {
      const s = ctx.agents.selected().state;
      return s.kind === 'connected' ? s.engine : undefined;
    },
    agentProblem: () => {
      const s = ctx.agents.selected().state;
      return s.kind === 'failed' || s.kind === 'retrying' ? s.reason : undefined;
    },
    dockerfiles: async () => (await ctx.dockerfiles.list()).map((u) => vscode.workspace.asRelativePath(u, false)),
    localAgentPid: () => ctx.local.pid,
    runRows: async () => (await ctx.sidebar.state()).runs,
    forgetRuns: () => ctx.store.clear(),
    scheduleRows: async () => (await ctx.sidebar.state()).schedules,
    volumeRows: async () => (await ctx.sidebar.state()).agent?.volumes,
    endpointRows: async () => (await ctx.sidebar.state()).endpoints,
    endpointBrowserUrl: async (name) => {
      const found = await ctx.endpoints.get(name);
      return found?.endpoint ? ctx.endpoints.browserUrl(found.client, found.endpoint) : undefined;
    },
    endpointPanel: (name) => ctx.endpointPanels.shown(name),
    shell: (runId) => {
      const pty = ctx.shells.get(runId);
      return pty && {
        transcript: pty.transcript, size: pty.size, ended: pty.ended, exitCode: pty.exitCode,
        setDimensions: (columns, rows) => pty.setDimensions({ columns, rows }),
      };
    },
    panelWatch: (runId) => ctx.panels.shownWatch(runId),
    setParallel: (dockerfile, parallel) => ctx.choices.rememberParallel(dockerfile, parallel),
    setBuildChoice: (dockerfile, choice) => ctx.buildChoices.update(dockerfile, choice),
    setBuildSecret: (dockerfile, id, value) => ctx.buildSecrets.set(dockerfile, id, value),
  };
}

export function deactivate(): void {}
