/**
 * CodeLens above the first FROM of each Dockerfile: `Run on ByteNite`, the hardware with its price
 * (which opens the picker), the volumes mounted when there are any, `Deploy as Endpoint` and `Schedule…`. While a run of
 * that Dockerfile is going: its phase, elapsed time and cost so far (opens the panel), `Stop`, and `Open :PORT` for each
 * forwarded port that accepts connections. Always last: `Run on Save: on|off`, the Dockerfile's watch toggle.
 */
import * as vscode from 'vscode';
import type { AgentManager } from '../agents/agentManager';
import { config, affects } from '../config';
import type { HardwareChoices } from '../hardware/hardwareChoices';
import { fitToCatalog, formatHardware, formatRate, formatUsd, pricePerHour } from '../hardware/pricing';
import type { RunStore } from '../runs/runStore';
import type { RunOnSave } from '../runs/runOnSave';
import { firstFromLine, readHardwareLabels } from './labels';
import type { BuildChoices } from '../runs/buildChoices';
import { mergeVolumes, parseVolume } from '../../agent/volumes/volumeFlag';

const PHASE: Record<string, string> = {
  queued: 'Queued', uploading: 'Uploading', building: 'Building', starting: 'Starting', running: 'Running',
};

export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}` : `${m}:${String(s % 60).padStart(2, '0')}`;
}

export class DockerfileCodeLensProvider implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private ticker?: NodeJS.Timeout;
  readonly onDidChangeCodeLenses = this.changed.event;

  constructor(
    private readonly agents: AgentManager,
    private readonly choices: HardwareChoices,
    private readonly store: RunStore,
    private readonly watches: RunOnSave,
    private readonly buildChoices?: BuildChoices,
  ) {
    const fire = () => this.changed.fire();
    this.disposables.push(
      watches.onDidChange(fire),
      agents.onDidChangeState(fire), agents.onDidChangeSelected(fire), choices.onDidChange(fire),
      vscode.workspace.onDidGrantWorkspaceTrust(fire),
      vscode.workspace.onDidChangeConfiguration((e) => affects(e, 'codeLens.enabled') && fire()),
      store.onDidChange(() => {
        fire();
        this.tick();
      }),
    );
  }

  /** Refreshes every second while a run is going, so elapsed time and cost move. */
  private tick(): void {
    const active = this.store.activeRuns().length > 0;
    if (active && !this.ticker) this.ticker = setInterval(() => this.changed.fire(), 1000);
    if (!active && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    if (!config.codeLensEnabled()) return [];
    const line = firstFromLine(doc.getText());
    if (line === undefined) return [];
    const range = new vscode.Range(line, 0, line, 0);
    const run = this.store.activeFor(doc.uri);
    if (run) {
      const phase = run.connectionProblem ? 'Reconnecting' : PHASE[run.state] ?? run.state;
      return [
        new vscode.CodeLens(range, {
          title: `$(sync~spin) ${phase} · ${formatElapsed(run.elapsedMs())} · ${formatUsd(run.costUsd)}`,
          tooltip: 'Show the run', command: 'bytenite.openRun', arguments: [run.runId],
        }),
        new vscode.CodeLens(range, { title: 'Stop', tooltip: 'Stop this run', command: 'bytenite.stopRun', arguments: [run.runId] }),
        // A forward whose container port accepts connections: one click to the page.
        ...run.ports.filter((p) => p.state === 'ready').map((p) => new vscode.CodeLens(range, {
          title: `Open :${new URL(p.url).port}`, tooltip: `Open ${p.url} (port ${p.containerPort} of the container) in the browser`,
          command: 'bytenite.openPort', arguments: [run.runId, p.containerPort],
        })),
        this.runOnSaveLens(range, doc.uri),
      ];
    }
    if (!vscode.workspace.isTrusted) {
      return [new vscode.CodeLens(range, {
        title: 'Run on ByteNite (disabled: this workspace is not trusted)', command: 'workbench.trust.manage',
      })];
    }
    const conn = this.agents.selected();
    const resolved = this.choices.resolve(doc.uri, doc.getText());
    let hardware = resolved.hardware;
    let hwTitle = formatHardware(hardware);
    if (conn.catalog) {
      hardware = fitToCatalog(conn.catalog, hardware);
      hwTitle = `${formatHardware(hardware)} · ${formatRate(pricePerHour(conn.catalog.prices, hardware))}`;
    }
    return [
      new vscode.CodeLens(range, {
        title: 'Run on ByteNite', tooltip: `Build and run this Dockerfile on agent "${conn.name}"`,
        command: 'bytenite.runDockerfile', arguments: [doc.uri],
      }),
      new vscode.CodeLens(range, {
        title: hwTitle, tooltip: `Choose hardware (now from ${resolved.source === 'choice' ? 'your choice' : resolved.source === 'labels' ? 'the bytenite.* labels' : 'the default'})`,
        command: 'bytenite.chooseHardware', arguments: [doc.uri],
      }),
      ...this.volumeLenses(range, doc),
      new vscode.CodeLens(range, {
        title: 'Deploy as Endpoint', tooltip: `Build this Dockerfile and serve it at /e/NAME/ on agent "${conn.name}": an instance starts on the first request`,
        command: 'bytenite.deployEndpoint', arguments: [doc.uri],
      }),
      new vscode.CodeLens(range, {
        title: 'Schedule…', tooltip: `Build this Dockerfile once and have agent "${conn.name}" run it at the times you choose (cron)`,
        command: 'bytenite.scheduleDockerfile', arguments: [doc.uri],
      }),
      this.runOnSaveLens(range, doc.uri),
      // A label that cannot be read is said, not silently ignored.
      ...resolved.problems.map((p) => new vscode.CodeLens(range, { title: `$(warning) ${p}`, command: '' })),
    ];
  }

  /** `Run on Save: off` / `on`, a toggle (extension/runs/runOnSave.ts). */
  private runOnSaveLens(range: vscode.Range, uri: vscode.Uri): vscode.CodeLens {
    const on = this.watches.isOn(uri);
    return new vscode.CodeLens(range, {
      title: `Run on Save: ${on ? 'on' : 'off'}`,
      tooltip: on
        ? 'Saving a file of the build context (not one .dockerignore leaves out) stops the run and starts the next one. Click to turn off.'
        : 'Run again whenever a file of the build context or this Dockerfile changes. Click to turn on.',
      command: 'bytenite.toggleRunOnSave', arguments: [uri],
    });
  }

  /** Redraws the lenses (a choice they show changed elsewhere). */
  refresh(): void {
    this.changed.fire();
  }

  /** The volumes a run mounts (labels, with the remembered choice over them), one lens that changes them. */
  private volumeLenses(range: vscode.Range, doc: vscode.TextDocument): vscode.CodeLens[] {
    let mounts;
    try {
      const chosen = (this.buildChoices?.get(doc.uri).volumes ?? []).map((v) => parseVolume(v));
      mounts = mergeVolumes(readHardwareLabels(doc.getText()).volumes ?? [], chosen);
    } catch {
      return []; // a remembered value no longer valid: the run says why
    }
    if (!mounts.length) return [];
    return [new vscode.CodeLens(range, {
      title: `$(database) ${mounts.map((m) => `${m.name}:${m.path}${m.readOnly ? ':ro' : ''}`).join(', ')}`,
      tooltip: 'The named volumes runs of this Dockerfile mount (kept on the agent between runs): choose others', command: 'bytenite.chooseVolumes', arguments: [doc.uri],
    })];
  }

  dispose(): void {
    clearInterval(this.ticker);
    for (const d of this.disposables) d.dispose();
  }
}
