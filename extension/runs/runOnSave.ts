/**
 * Run on Save: while it is on for a Dockerfile, a change to a file of its build context (as `.dockerignore`
 * leaves it) or to the Dockerfile stops the run of that Dockerfile in progress (a cancel: SIGTERM, then the
 * agent's grace) and starts the next one with the choices remembered for it, in the same panel.
 *
 * What counts as a change is the CLI's `bytenite run --watch` rule, from the same code (agent/cli/contextWatcher.ts):
 * file events start a 300 ms wait, then the context is listed and hashed again and compared with what the last
 * run was built from, so an ignored file, or a save of the same bytes, starts nothing. Outputs fetched into
 * `<workspace>/bytenite-out/` are left out, so a run's own results never start the next one.
 *
 * On or off is remembered per Dockerfile in the workspace state; so is nothing else: the runs of a watch (the
 * earlier ones a panel folds above the current one, and why each ended) are known for this window's life.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ContextWatcher } from '../../agent/cli/contextWatcher';
import type { WatchEarlierRun, WatchPanelState } from '../../webview/protocol';
import type { BuildChoices } from './buildChoices';
import { errorMessage, type Log } from '../log';
import type { Run } from './run';
import type { Runner } from './runner';
import type { RunStore } from './runStore';

const KEY = 'bytenite.runOnSave';
/** A cancelled run normally ends within the agent's grace (10 s); past this the next run starts anyway. */
const STOP_WAIT_MS = 30_000;
/** Earlier runs a panel keeps folded above the current one. */
const MAX_EARLIER = 20;

/** Starts a run of `dockerfile` with its remembered choices, in the panel of `from` when it has one; the new run's id. */
export type WatchStarter = (dockerfile: vscode.Uri, from: string | undefined) => Promise<string | undefined>;

export class RunOnSave implements vscode.Disposable {
  private readonly watchers = new Map<string, ContextWatcher>();
  /** Why a run ended, for the runs this watch stopped ("stopped: src/app.py changed"). */
  private readonly stopped = new Map<string, string>();
  /** The earlier runs of a run's watch, oldest first. */
  private readonly earlier = new Map<string, string[]>();
  /** Per Dockerfile: a restart under way, and the change seen meanwhile (it starts one more once that is done). */
  private readonly busy = new Set<string>();
  private readonly pending = new Map<string, string>();
  private starter?: WatchStarter;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when a Dockerfile's watch is turned on or off, and when a watch started a run. */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly state: vscode.Memento,
    private readonly store: RunStore,
    private readonly runner: Runner,
    private readonly buildChoices: BuildChoices,
    private readonly log: Log,
  ) {
    // Off the activation path: a recursive watch lists the folders it covers.
    setTimeout(() => {
      for (const key of this.state.get<string[]>(KEY, [])) this.watch(vscode.Uri.parse(key));
    }, 0);
  }

  /** The commands module starts runs (hardware, build options, the panel); given once commands are registered. */
  setStarter(starter: WatchStarter): void {
    this.starter = starter;
  }

  isOn(dockerfile: vscode.Uri): boolean {
    return this.state.get<string[]>(KEY, []).includes(dockerfile.toString());
  }

  /** Turns the watch of `dockerfile` on or off (the opposite of now when `on` is not given); resolves with the new state. */
  async toggle(dockerfile: vscode.Uri, on = !this.isOn(dockerfile)): Promise<boolean> {
    const key = dockerfile.toString();
    const keys = this.state.get<string[]>(KEY, []).filter((k) => k !== key);
    await this.state.update(KEY, on ? [...keys, key] : keys);
    if (on) this.watch(dockerfile);
    else this.unwatch(key);
    this.log.info(`run on save ${on ? 'on' : 'off'} for ${vscode.workspace.asRelativePath(dockerfile, false)}`);
    this.changed.fire();
    return on;
  }

  /** What a run's panel shows of the watch: its toggle, and the runs before this one with why each ended. */
  panelState(runId: string): WatchPanelState | undefined {
    const dockerfile = this.store.get(runId)?.dockerfile.toString() ?? this.store.historyEntry(runId)?.dockerfile;
    if (!dockerfile) return undefined;
    return {
      runId, on: this.isOn(vscode.Uri.parse(dockerfile)),
      earlier: (this.earlier.get(runId) ?? []).map((id) => this.describe(id)),
    };
  }

  private describe(runId: string): WatchEarlierRun {
    const final = this.store.get(runId)?.final ?? this.store.historyEntry(runId)?.final;
    const why = this.stopped.get(runId);
    const ended = why ?? (!final ? 'ended'
      : final.kind === 'exited' ? `exit code ${final.exitCode}${final.oomKilled ? ' (out of memory)' : ''}`
        : final.kind === 'failed' ? `failed: ${final.message}`
          : 'stopped');
    return { runId, ended, durationMs: final?.durationMs, costUsd: final?.cost.total };
  }

  private watch(dockerfile: vscode.Uri): void {
    const key = dockerfile.toString();
    if (this.watchers.has(key)) return;
    const contextDir = this.buildChoices.get(dockerfile).contextDir ?? path.dirname(dockerfile.fsPath);
    const root = vscode.workspace.getWorkspaceFolder(dockerfile)?.uri.fsPath ?? contextDir;
    try {
      const w = new ContextWatcher(contextDir, dockerfile.fsPath, (what) => this.onChange(dockerfile, what), [path.join(root, 'bytenite-out')]);
      // Measured from now: what the last run was built from is not known, and a change made before the watch
      // was turned on is not one the user expects a run for.
      w.mark();
      this.watchers.set(key, w);
    } catch (err) {
      this.log.warn(`run on save: cannot watch ${contextDir}: ${errorMessage(err)}`);
    }
  }

  private unwatch(key: string): void {
    this.watchers.get(key)?.close();
    this.watchers.delete(key);
    this.pending.delete(key);
  }

  private onChange(dockerfile: vscode.Uri, what: string): void {
    const key = dockerfile.toString();
    if (!this.watchers.has(key)) return;
    if (this.busy.has(key)) {
      this.pending.set(key, what);
      return;
    }
    this.busy.add(key);
    void this.restart(dockerfile, what)
      .catch((err) => this.log.warn(`run on save: ${vscode.workspace.asRelativePath(dockerfile, false)}: ${errorMessage(err)}`))
      .finally(() => {
        this.busy.delete(key);
        const next = this.pending.get(key);
        this.pending.delete(key);
        if (next !== undefined) this.onChange(dockerfile, next);
      });
  }

  private async restart(dockerfile: vscode.Uri, what: string): Promise<void> {
    if (!vscode.workspace.isTrusted || !this.starter) return;
    const rel = vscode.workspace.asRelativePath(dockerfile, false);
    const current = this.store.activeFor(dockerfile);
    const from = current?.runId ?? this.store.rows().find((r) => this.store.historyEntry(r.runId)?.dockerfile === dockerfile.toString())?.runId;
    if (current) {
      this.stopped.set(current.runId, `stopped: ${what} changed`);
      this.log.info(`run on save: ${what} changed: stopping ${current.runId} to run ${rel} again`);
      await this.runner.stop(current).catch((err) => this.log.warn(`run on save: stopping ${current.runId}: ${errorMessage(err)}`));
      await ended(current, STOP_WAIT_MS);
    } else {
      this.log.info(`run on save: ${what} changed: running ${rel}`);
    }
    // The next change is measured against what this run is built from.
    this.watchers.get(dockerfile.toString())?.mark();
    const runId = await this.starter(dockerfile, from);
    if (runId && from) this.earlier.set(runId, [...(this.earlier.get(from) ?? []), from].slice(-MAX_EARLIER));
    this.changed.fire();
  }

  dispose(): void {
    for (const key of [...this.watchers.keys()]) this.unwatch(key);
    this.changed.dispose();
  }
}

/** Resolves once `run` has its final event (or is lost), or after `ms`. */
function ended(run: Run, ms: number): Promise<void> {
  if (!run.active) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      sub.dispose();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const sub = run.onDidChange(() => {
      if (!run.active) done();
    });
  });
}
