/**
 * Opens ByteNite terminals (a ShellPty in a VS Code terminal) and keeps the open ones by run, so the
 * extension-host tests can read what a terminal shows. Disposing closes them all (their sessions end).
 */
import * as vscode from 'vscode';
import type { AgentManager } from '../agents/agentManager';
import type { Log } from '../log';
import { formatHardware } from '../hardware/pricing';
import type { Run } from '../runs/run';
import { openExecChannel } from './execChannel';
import { followRunChannel } from './runChannel';
import { SHELL_COMMAND } from './shellChannel';
import { ShellPty } from './shellPty';

export class ShellTerminals implements vscode.Disposable {
  private readonly open = new Map<string, { pty: ShellPty; terminal: vscode.Terminal }>();
  private readonly closed: vscode.Disposable;

  constructor(private readonly agents: AgentManager, private readonly log: Log) {
    this.closed = vscode.window.onDidCloseTerminal((t) => {
      for (const [id, o] of this.open) if (o.terminal === t) this.open.delete(id);
    });
  }

  /** The latest terminal opened on a run. */
  get(runId: string): ShellPty | undefined {
    return this.open.get(runId)?.pty;
  }

  /** A shell inside a running run's container, over the agent's /exec WebSocket. */
  execInto(run: Run): ShellPty {
    const conn = this.agents.connection(run.info.agent);
    const pty = new ShellPty(async (size, sink) => {
      const client = await conn.get(15_000);
      this.log.info(`open shell in run ${run.runId} on "${conn.name}" (${size.cols ?? '?'}x${size.rows ?? '?'})`);
      return openExecChannel(client, run.runId, SHELL_COMMAND, size, sink);
    }, (m) => this.log.warn(`shell in run ${run.runId}: ${m}`));
    this.show(run.runId, pty, title(run.info.agent, run.runId, formatHardware(run.hardware)));
    return pty;
  }

  /**
   * A shell in a fresh container: `start` starts the interactive run at the terminal's size (known once
   * VS Code opens the terminal); the terminal is renamed with the run's id once it has one.
   */
  newContainer(agent: string, hardware: string, start: (size: { cols?: number; rows?: number }) => Promise<Run>, stop: (run: Run) => Promise<void>): Promise<Run | undefined> {
    let resolveRun!: (run: Run | undefined) => void;
    const started = new Promise<Run | undefined>((r) => (resolveRun = r));
    const pty: ShellPty = new ShellPty(async (size, sink) => {
      pty.say(`starting a container on "${agent}" (${hardware})…`);
      const run = await start(size);
      this.open.set(run.runId, { pty, terminal });
      pty.rename(title(agent, run.runId, hardware));
      resolveRun(run);
      const conn = this.agents.connection(agent);
      return followRunChannel(run, sink, { client: () => conn.get(15_000), stop, say: (l) => pty.say(l) });
    }, (m) => {
      this.log.warn(`shell in a new container: ${m}`);
      resolveRun(undefined);
    });
    const terminal = this.show(undefined, pty, title(agent, 'starting', hardware));
    return started;
  }

  private show(runId: string | undefined, pty: ShellPty, name: string): vscode.Terminal {
    const terminal = vscode.window.createTerminal({ name, pty, iconPath: new vscode.ThemeIcon('terminal') });
    if (runId) this.open.set(runId, { pty, terminal });
    terminal.show();
    return terminal;
  }

  dispose(): void {
    this.closed.dispose();
    for (const { terminal } of this.open.values()) terminal.dispose();
    this.open.clear();
  }
}

/** `ByteNite: local · r-1a2b3c · 1 vCPU · 2 GiB`: the agent, the run, the hardware. */
function title(agent: string, runId: string, hardware: string): string {
  return `ByteNite: ${agent} · ${runId.slice(0, 8)} · ${hardware}`;
}
