/**
 * Everything the extension is made of, created once in `activate` and owned here: every disposable is
 * pushed into the extension's subscriptions, so deactivation (or a test host shutting down) cleans up,
 * the local agent process included.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AgentManager } from './agents/agentManager';
import { LocalAgent } from './agents/localAgent';
import { DockerfileIndex } from './dockerfiles/dockerfileIndex';
import { DockerfileCodeLensProvider } from './dockerfiles/dockerfileCodeLens';
import { HardwareChoices } from './hardware/hardwareChoices';
import { createLog, type Log } from './log';
import { AgentRunHistory } from './runs/agentRunHistory';
import { Runner } from './runs/runner';
import { RunStore } from './runs/runStore';
import { traceRuns } from './runs/runTrace';
import { AgentTokens, BuildSecrets } from './secrets';
import { BuildChoices } from './runs/buildChoices';
import { AgentStatusBar } from './statusBar';
import { RUN_PANEL_VIEW_TYPE, RunPanels, type PanelActions } from './views/runPanel';
import { SIDEBAR_VIEW_ID, SidebarProvider } from './views/sidebar';
import { ScheduleList } from './schedules/scheduleList';
import { EndpointList } from './endpoints/endpointList';
import { EndpointPanels } from './views/endpointPanel';
import { ShellTerminals } from './shell/shellTerminals';
import { RunOnSave } from './runs/runOnSave';

/** Dockerfile documents, by language and by the file names the built-in language may not claim. */
export const DOCKERFILE_SELECTOR: vscode.DocumentSelector = [
  { language: 'dockerfile' },
  { pattern: '**/{Dockerfile,Containerfile,*.Dockerfile,*.dockerfile,Dockerfile.*}' },
];

export class Ctx {
  readonly log: Log;
  readonly tokens: AgentTokens;
  readonly buildSecrets: BuildSecrets;
  readonly buildChoices: BuildChoices;
  readonly local: LocalAgent;
  readonly agents: AgentManager;
  readonly dockerfiles: DockerfileIndex;
  readonly choices: HardwareChoices;
  readonly store: RunStore;
  readonly runner: Runner;
  readonly panels: RunPanels;
  readonly sidebar: SidebarProvider;
  readonly codeLens: DockerfileCodeLensProvider;
  readonly schedules: ScheduleList;
  readonly endpoints: EndpointList;
  readonly endpointPanels: EndpointPanels;
  readonly shells: ShellTerminals;
  readonly watches: RunOnSave;

  constructor(readonly ext: vscode.ExtensionContext, panelActions: PanelActions) {
    const own = <T extends vscode.Disposable>(d: T): T => {
      ext.subscriptions.push(d);
      return d;
    };
    this.log = own(createLog());
    this.tokens = new AgentTokens(ext.secrets);
    this.buildSecrets = own(new BuildSecrets(ext.secrets));
    this.buildChoices = new BuildChoices(ext.workspaceState);
    this.local = own(new LocalAgent(
      path.join(ext.extensionPath, 'dist', 'bytenite.js'), ext.globalStorageUri.fsPath, this.log,
    ));
    this.agents = own(new AgentManager(this.local, this.tokens, this.log));
    this.dockerfiles = own(new DockerfileIndex());
    this.choices = own(new HardwareChoices(ext.workspaceState));
    this.store = own(new RunStore(ext.workspaceState, path.join((ext.storageUri ?? ext.globalStorageUri).fsPath, 'runs')));
    this.runner = own(new Runner(this.agents, this.store, this.log));
    own(new AgentRunHistory(this.agents, this.store, this.log));
    own(traceRuns(this.store));
    this.shells = own(new ShellTerminals(this.agents, this.log));
    this.panels = own(new RunPanels(ext.extensionUri, this.store, panelActions, this.log));
    this.watches = own(new RunOnSave(ext.workspaceState, this.store, this.runner, this.buildChoices, this.log));
    own(this.watches.onDidChange(() => this.panels.refreshWatch()));
    this.schedules = own(new ScheduleList(this.agents, this.store, this.log));
    this.endpoints = own(new EndpointList(this.agents, this.log));
    this.endpointPanels = own(new EndpointPanels(ext.extensionUri, this.agents, this.endpoints, this.log));
    this.sidebar = own(new SidebarProvider(ext.extensionUri, this.agents, this.dockerfiles, this.choices, this.store, this.endpoints, this.schedules));
    this.codeLens = own(new DockerfileCodeLensProvider(this.agents, this.choices, this.store, this.watches, this.buildChoices));
    own(new AgentStatusBar(this.agents, this.store));
    own(vscode.languages.registerCodeLensProvider(DOCKERFILE_SELECTOR, this.codeLens));
    own(vscode.window.registerWebviewPanelSerializer(RUN_PANEL_VIEW_TYPE, this.panels));
    own(vscode.window.registerWebviewViewProvider(SIDEBAR_VIEW_ID, this.sidebar));
    // The local agent is a child process: stop it with the extension (deactivate may not be awaited long).
    own({ dispose: () => void this.local.stop() });
  }

  /** Runs `fn` with a status bar spinner saying `title`. */
  progress<T>(title: string, fn: () => Thenable<T>): Thenable<T> {
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title }, fn);
  }
}
