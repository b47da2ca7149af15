/**
 * Starts, follows and stops runs through the shared client (`startRun`): packs the Dockerfile's folder as
 * the build context, relays every event into the Run, re-attaches from the last seq after a reconnect.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AgentError } from '../../agent/client/agentClient';
import { fetchOutputs } from '../../agent/client/fetchOutputs';
import type { StartRunOptions } from '../../agent/client/startRun';
import type { HardwareRequest, RunEvent } from '../../agent/protocol';
import type { AgentConnection } from '../agents/agentConnection';
import type { AgentManager } from '../agents/agentManager';
import { errorMessage, type Log } from '../log';
import { formatHardware, formatRate, pricePerHour } from '../hardware/pricing';
import { LocalPorts } from './localPorts';
import { Run, type StartMarks } from './run';
import type { HistoryEntry, RunStore } from './runStore';
import type { BuildOptions } from './buildOptions';
import { readHardwareLabels } from '../dockerfiles/labels';

export class Runner implements vscode.Disposable {
  private readonly connectionOf = new Map<string, AgentConnection>();
  private readonly watched = new Set<AgentConnection>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly agents: AgentManager,
    private readonly store: RunStore,
    private readonly log: Log,
  ) {}

  /**
   * Starts a run of `dockerfile` on the selected agent; resolves once the agent accepted it. `parallel` > 1
   * fans out into that many tasks, on an agent that offers `fan-out` (elsewhere the run has one task).
   * `build`: the context folder (default: the Dockerfile's), the stage and the build secrets. `program`: a
   * command instead of the image's, and an interactive run's terminal (Open Shell in a new container).
   */
  async start(dockerfile: vscode.Uri, hardware: HardwareRequest, parallel = 1, build?: BuildOptions, program?: Pick<StartRunOptions, 'command' | 'interactive'>): Promise<Run> {
    if (!vscode.workspace.isTrusted) throw new Error('Runs are disabled in an untrusted workspace: trust the folder to run Dockerfiles.');
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === dockerfile.toString());
    if (doc?.isDirty) await doc.save();
    const conn = this.agents.selected();
    this.watch(conn);
    const client = await conn.get();
    const rel = vscode.workspace.asRelativePath(dockerfile, false);
    // The chosen volumes over `LABEL bytenite.volume=NAME:/path` (buildOptions); without options, the labels alone, as the CLI reads them.
    const volumes = build ? build.volumes : readHardwareLabels(doc ? doc.getText() : Buffer.from(await vscode.workspace.fs.readFile(dockerfile)).toString('utf8')).volumes;
    const contextDir = build?.contextDir ?? path.dirname(dockerfile.fsPath);
    const rate = conn.catalog ? pricePerHour(conn.catalog.prices, hardware) : undefined;
    let run: Run | undefined;
    const early: [number, RunEvent][] = [];
    this.log.info(`run ${rel} on "${conn.name}" with ${formatHardware(hardware)}${parallel > 1 ? ` × ${parallel} tasks` : ''} (context ${contextDir}${build?.target ? `, target ${build.target}` : ''}${build?.buildSecrets ? `, build secrets ${Object.keys(build.buildSecrets).join(', ')}` : ''}${volumes?.length ? `, volumes ${volumes.map((v) => `${v.name}:${v.path}${v.readOnly ? ':ro' : ''}`).join(', ')}` : ''})`);
    // Loaded on first run: packing the context pulls in tar and .dockerignore handling.
    const { startRun } = await import('../../agent/client/startRun');
    const tasks = parallel > 1 && client.hello.capabilities.includes('fan-out') ? parallel : 1;
    if (tasks !== parallel) this.log.warn(`agent "${conn.name}" does not offer fan-out: running ${rel} as one task, not ${parallel}`);
    // Listening before the run starts: a connection made early waits for the container, as with `-p`.
    const ports = build?.ports?.length
      ? await LocalPorts.open(build.ports, conn, this.log, (views) => run?.setPorts(views))
      : undefined;
    let started: Awaited<ReturnType<typeof startRun>>;
    const marks: StartMarks = {};
    try {
      started = await startRun(client, {
        contextDir, dockerfile: dockerfile.fsPath, hardware, name: rel, parallel: tasks, target: build?.target, buildSecrets: build?.buildSecrets,
        ports: build?.ports?.map((p) => p.containerPort), volumes, ...program,
        onEvent: (seq, event) => (run ? run.add(seq, event) : early.push([seq, event])), marks,
      });
    } catch (err) {
      ports?.close('the run did not start');
      throw err;
    }
    ports?.setRun(started.runId);
    run = new Run(
      {
        runId: started.runId, name: rel, dockerfile: rel, agent: conn.name,
        hardware: `${formatHardware(hardware)} · ${formatRate(rate)}`, hourlyUsd: rate, createdAt: new Date().toISOString(),
      },
      dockerfile, hardware,
    );
    Object.assign(run.marks, marks);
    if (ports) {
      run.setPorts(ports.views);
      // From the run, not from this start's stream: events after a re-attach reach the forwards too.
      const sub = run.onDidChange((events) => {
        for (const e of events) ports.event(e.event as RunEvent);
        if (!run?.active) sub.dispose();
      });
    }
    for (const [seq, e] of early) run.add(seq, e);
    this.connectionOf.set(run.runId, conn);
    const r = run;
    started.done.then(
      (final) => this.log.info(`run ${r.runId} ${final.kind}: exit ${final.exitCode}, ${final.start} start, $${final.cost.total}`),
      (err) => this.log.warn(`run ${r.runId}: ${errorMessage(err)} (will re-attach when the agent is back)`),
    );
    this.store.add(run);
    return run;
  }

  /**
   * Brings back a run known only from history (VS Code restarted): asks its agent to replay the run's
   * events from the start and follow it if it is still going. Undefined when the agent no longer has it.
   */
  async restore(entry: HistoryEntry): Promise<Run | undefined> {
    const existing = this.store.get(entry.info.runId);
    if (existing) return existing;
    const fromDisk = async () => {
      const events = await this.store.loadEvents(entry.info.runId);
      if (!events?.length) return undefined;
      const run = this.revive(entry);
      for (const e of events) run.add(e.seq, e.event as RunEvent, e.at);
      this.store.add(run);
      return run;
    };
    // A finished run: the events saved when it ended are complete and need no agent.
    if (entry.final) {
      const run = await fromDisk();
      if (run) return run;
    }
    const conn = this.agents.connection(entry.info.agent);
    this.watch(conn);
    try {
      const client = await conn.get(15_000);
      const run = this.revive(entry);
      this.connectionOf.set(run.runId, conn);
      await client.attach(run.runId, 0, (seq, e) => run.add(seq, e));
      this.store.add(run);
      this.log.info(`re-attached to run ${run.runId} on agent "${conn.name}"`);
      return run;
    } catch (err) {
      this.log.info(`run ${entry.info.runId} not restored from agent "${entry.info.agent}": ${errorMessage(err)}`);
      return fromDisk();
    }
  }

  private revive(entry: HistoryEntry): Run {
    return new Run(entry.info, vscode.Uri.parse(entry.dockerfile), entry.hardware, Date.parse(entry.row.createdAt));
  }

  async stop(run: Run): Promise<void> {
    const conn = this.connectionOf.get(run.runId) ?? this.agents.selected();
    const client = await conn.get(10_000);
    await client.cancel(run.runId);
  }

  /**
   * Downloads the run's outputs into `<workspace>/bytenite-out/<runId>/`, written as they arrive and moved
   * into place once checked; a dropped connection resumes. Resolves with that folder.
   */
  async fetchOutputs(runId: string, dockerfile: vscode.Uri, agentName: string, progress?: (received: number, total?: number) => void): Promise<{ dir: vscode.Uri; files: number }> {
    const conn = this.connectionOf.get(runId) ?? this.agents.connection(agentName);
    const root = vscode.workspace.getWorkspaceFolder(dockerfile)?.uri.fsPath ?? path.dirname(dockerfile.fsPath);
    const dir = path.join(root, 'bytenite-out', runId);
    const got = await fetchOutputs({
      runId, outDir: dir, connect: () => conn.get(10_000), onProgress: progress,
      onResume: (offset, why) => this.log.warn(`outputs of ${runId}: download cut (${why}); resuming at byte ${offset}`),
    });
    this.log.info(`outputs of ${runId}: ${got.files} file(s) in ${dir}`);
    return { dir: vscode.Uri.file(dir), files: got.files };
  }

  /** Follows the connection so that runs in progress re-attach after a reconnect and show the outage. */
  private watch(conn: AgentConnection): void {
    if (this.watched.has(conn)) return;
    this.watched.add(conn);
    const mine = () => this.store.activeRuns().filter((r) => this.connectionOf.get(r.runId) === conn);
    this.disposables.push(
      conn.onDidChangeState((s) => {
        if (s.kind === 'retrying' || s.kind === 'failed') for (const r of mine()) r.setConnectionProblem(s.reason);
      }),
      conn.onDidConnect(async (client) => {
        for (const r of mine()) {
          try {
            await client.attach(r.runId, r.lastSeq, (seq, e) => r.add(seq, e));
            r.setConnectionProblem(undefined);
            this.log.info(`re-attached to run ${r.runId} after seq ${r.lastSeq}`);
          } catch (err) {
            this.log.warn(`cannot re-attach to run ${r.runId}: ${errorMessage(err)}`);
            if ((err as AgentError).name === 'AgentError' && (err as AgentError).code === 'not_found') {
              r.markLost(`agent "${conn.name}" no longer knows this run (it restarted); its result is lost`);
            }
          }
        }
      }),
    );
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
