/**
 * The agents the extension knows (the built-in local one plus the remote ones in settings), which one is
 * selected, and one connection per agent, created on first use.
 */
import { promises as fs } from 'node:fs';
import * as vscode from 'vscode';
import { affects, config, LOCAL_AGENT } from '../config';
import type { Log } from '../log';
import type { AgentTokens } from '../secrets';
import { AgentConnection, ConnectionState } from './agentConnection';
import { LocalAgent, LocalAgentError } from './localAgent';

class NeedsUserAction extends Error {}

export class AgentManager implements vscode.Disposable {
  private readonly connections = new Map<string, AgentConnection>();
  private readonly selectedChanged = new vscode.EventEmitter<AgentConnection>();
  private readonly stateChanged = new vscode.EventEmitter<{ agent: string; state: ConnectionState }>();
  private readonly disposables: vscode.Disposable[] = [this.selectedChanged, this.stateChanged];
  /** False after Stop Local Agent (or with autoStart off) until Start Local Agent. */
  private localAllowed: boolean;
  readonly onDidChangeSelected = this.selectedChanged.event;
  readonly onDidChangeState = this.stateChanged.event;

  constructor(
    readonly local: LocalAgent,
    private readonly tokens: AgentTokens,
    private readonly log: Log,
  ) {
    this.localAllowed = config.localAgentAutoStart();
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (affects(e, 'agents.selected')) this.selectedChanged.fire(this.selected());
        // Another engine for the local agent: restart it there (runs in progress on it are stopped, as by Stop Local Agent).
        if ((affects(e, 'localAgent.dockerContext') || affects(e, 'localAgent.hotPool')) && this.localAllowed) void this.restartLocal();
        if (affects(e, 'agents.remote')) {
          // A changed URL needs a fresh connection.
          for (const [name, c] of this.connections) {
            if (name !== LOCAL_AGENT) {
              c.dispose();
              this.connections.delete(name);
            }
          }
          this.selectedChanged.fire(this.selected());
        }
      }),
    );
  }

  names(): string[] {
    return [LOCAL_AGENT, ...config.remoteAgents().map((a) => a.name)];
  }

  selectedName(): string {
    const name = config.selectedAgent();
    return this.names().includes(name) ? name : LOCAL_AGENT;
  }

  selected(): AgentConnection {
    return this.connection(this.selectedName());
  }

  async select(name: string): Promise<void> {
    await config.setSelectedAgent(name);
    this.selectedChanged.fire(this.selected());
  }

  describe(name: string): string {
    if (name === LOCAL_AGENT) return 'bundled agent on 127.0.0.1 (Docker on this machine)';
    return config.remoteAgents().find((a) => a.name === name)?.url ?? '';
  }

  connection(name: string): AgentConnection {
    let c = this.connections.get(name);
    if (!c) {
      c = new AgentConnection(name, () => this.endpoint(name), this.log,
        (err) => err instanceof LocalAgentError || err instanceof NeedsUserAction ||
          (err instanceof Error && err.name === 'AgentError' && /401|refused the token/.test(err.message)));
      const conn = c;
      c.onDidChangeState((state) => this.stateChanged.fire({ agent: conn.name, state }));
      this.connections.set(name, c);
    }
    return c;
  }

  private async endpoint(name: string) {
    if (name === LOCAL_AGENT) {
      if (!this.localAllowed) throw new NeedsUserAction('the local agent is stopped: run "ByteNite: Start Local Agent"');
      return this.local.start();
    }
    const remote = config.remoteAgents().find((a) => a.name === name);
    if (!remote) throw new NeedsUserAction(`no agent named "${name}" in the setting bytenite.agents.remote`);
    const token = await this.tokens.get(name);
    if (!token) throw new NeedsUserAction(`no token for agent "${name}": run "ByteNite: Set Agent Token"`);
    let ca: Buffer | undefined;
    if (remote.caFile) {
      try {
        ca = await fs.readFile(remote.caFile);
      } catch (err) {
        throw new NeedsUserAction(`cannot read caFile ${remote.caFile} of agent "${name}": ${(err as Error).message}`);
      }
    }
    return { url: remote.url, token, ca };
  }

  async startLocal(): Promise<void> {
    this.localAllowed = true;
    await this.connection(LOCAL_AGENT).get();
  }

  async stopLocal(): Promise<void> {
    this.localAllowed = false;
    this.connections.get(LOCAL_AGENT)?.disconnect('the local agent is stopped');
    await this.local.stop();
  }

  private async restartLocal(): Promise<void> {
    this.log.info('the local agent\'s settings changed (bytenite.localAgent.dockerContext or hotPool): restarting it');
    this.connections.get(LOCAL_AGENT)?.disconnect('the local agent is restarting with its new settings');
    await this.local.stop();
    if (this.localAllowed) await this.connection(LOCAL_AGENT).get().catch(() => {});
  }

  /** Forgets a remote agent's connection (after its token changed). */
  reset(name: string): void {
    const c = this.connections.get(name);
    if (c) {
      c.dispose();
      this.connections.delete(name);
      if (name === this.selectedName()) this.selectedChanged.fire(this.selected());
    }
  }

  dispose(): void {
    for (const c of this.connections.values()) c.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
