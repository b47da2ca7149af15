/**
 * Brings the agent's own record of runs into the sidebar: on every (re)connection to the selected agent it
 * asks for `run.list` (the agent's journal, past runs included) and adds the runs this workspace has not
 * seen, e.g. ones started from the CLI or forgotten by a reset workspace state. Their events are not
 * copied: opening one replays them from the agent (Runner.restore attaches from seq 0).
 */
import * as vscode from 'vscode';
import type { AgentClient } from '../../agent/client/agentClient';
import type { FinalEvent, RunSummary } from '../../agent/protocol';
import type { AgentConnection } from '../agents/agentConnection';
import type { AgentManager } from '../agents/agentManager';
import { formatHardware, formatRate, pricePerHour } from '../hardware/pricing';
import { errorMessage, type Log } from '../log';
import type { HistoryEntry, RunStore } from './runStore';

const FINAL_KINDS = new Set(['exited', 'failed', 'cancelled']);

export class AgentRunHistory implements vscode.Disposable {
  private readonly watched = new Set<AgentConnection>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(agents: AgentManager, private readonly store: RunStore, private readonly log: Log) {
    this.watch(agents.selected());
    this.disposables.push(agents.onDidChangeSelected((conn) => this.watch(conn)));
  }

  private watch(conn: AgentConnection): void {
    if (this.watched.has(conn)) return;
    this.watched.add(conn);
    this.disposables.push(conn.onDidConnect((client) => void this.merge(conn, client)));
  }

  private async merge(conn: AgentConnection, client: AgentClient): Promise<void> {
    try {
      const runs = await client.list();
      const added = this.store.merge(runs.map((s) => toEntry(s, conn)));
      if (added) this.log.info(`${added} past run(s) from agent "${conn.name}" added to the run history`);
    } catch (err) {
      // Only the history is incomplete: the connection and the runs in progress are unaffected.
      this.log.warn(`cannot list the runs of agent "${conn.name}": ${errorMessage(err)}`);
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** A run from an agent's list as a history entry (shared with the schedules' runs, extension/schedules/scheduleList.ts). */
export function toEntry(s: RunSummary, conn: AgentConnection): HistoryEntry {
  const final = s.final && FINAL_KINDS.has(s.final.kind) ? (s.final as FinalEvent) : undefined;
  const name = s.name ?? s.runId;
  const rate = conn.catalog ? pricePerHour(conn.catalog.prices, s.hardware) : undefined;
  // Runs started from this workspace are named by their workspace-relative Dockerfile path (the CLI's by
  // whatever --name says): resolve it against the first folder so Run Again has a file to try.
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const dockerfile = s.name && folder ? vscode.Uri.joinPath(folder, s.name) : folder;
  return {
    info: {
      runId: s.runId, name, dockerfile: s.name ?? '', agent: conn.name,
      hardware: `${formatHardware(s.hardware)} · ${formatRate(rate)}`, hourlyUsd: rate, createdAt: s.createdAt,
    },
    dockerfile: dockerfile?.toString() ?? '',
    row: {
      runId: s.runId, name, state: s.state, start: final?.start, createdAt: s.createdAt, durationMs: final?.durationMs,
      costUsd: final?.cost.total ?? 0, exitCode: final?.exitCode, oomKilled: final?.oomKilled,
    },
    final,
    hardware: s.hardware,
  };
}
