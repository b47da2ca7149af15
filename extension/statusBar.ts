/** The status bar item: the selected agent, its connection state, the cost of the run in progress and its forwards. */
import * as vscode from 'vscode';
import type { AgentManager } from './agents/agentManager';
import { engineLabel } from './agents/engineLabel';
import { formatUsd } from './hardware/pricing';
import type { RunStore } from './runs/runStore';

export class AgentStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('bytenite.agent', vscode.StatusBarAlignment.Left, 50);
  private readonly disposables: vscode.Disposable[] = [this.item];

  constructor(private readonly agents: AgentManager, private readonly store: RunStore) {
    this.item.name = 'ByteNite agent';
    this.item.command = 'bytenite.selectAgent';
    const update = () => this.update();
    this.disposables.push(agents.onDidChangeState(update), agents.onDidChangeSelected(update), store.onDidChange(update));
    this.update();
    this.item.show();
  }

  private update(): void {
    const name = this.agents.selectedName();
    const s = this.agents.selected().state;
    const active = this.store.activeRuns();
    const cost = active.length ? ` · ${formatUsd(active.reduce((sum, r) => sum + r.costUsd, 0))}` : '';
    let icon = '$(server)';
    let state = '';
    let tooltip = `ByteNite agent "${name}": `;
    this.item.backgroundColor = undefined;
    switch (s.kind) {
      case 'connected':
        // Which engine runs go to, at a glance: a context switch or a Podman socket is otherwise invisible.
        state = ` · ${engineLabel(s.engine)}`;
        tooltip += `connected (agent ${s.agentVersion}, ${s.engine})`;
        break;
      case 'idle': icon = '$(server)'; state = ' · idle'; tooltip += 'not connected yet'; break;
      case 'connecting': icon = '$(sync~spin)'; state = ' · connecting'; tooltip += 'connecting'; break;
      case 'retrying':
        icon = '$(debug-disconnect)'; state = ' · reconnecting'; tooltip += `${s.reason}; retrying`;
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
        break;
      case 'failed':
        icon = '$(error)'; state = ' · not connected'; tooltip += s.reason;
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
    }
    if (active.length) icon = '$(play)';
    // The forwards of the runs in progress: where their pages are, waiting ones marked.
    const ports = active.flatMap((r) => r.ports.filter((p) => p.state !== 'closed'));
    const portText = ports.length ? ` · $(plug) ${ports.map((p) => `:${new URL(p.url).port}${p.state === 'waiting' ? '…' : ''}`).join(' ')}` : '';
    const portTip = ports.map((p) => `\n${p.url} → port ${p.containerPort} of the container (${p.state === 'ready' ? 'ready' : 'waiting for the container to accept'})`).join('');
    this.item.text = `${icon} ByteNite: ${name}${state}${cost}${portText}`;
    this.item.tooltip = `${tooltip}${portTip}\nClick to select an agent.`;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
