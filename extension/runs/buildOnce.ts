/**
 * Deploy as Endpoint and Schedule… build the Dockerfile once through the agent (a `buildOnly` run, warm and
 * incremental like any run) with its progress in a notification, then register what was built. One place for
 * both, so the two say the same things while they build.
 */
import * as vscode from 'vscode';
import type { AgentClient } from '../../agent/client/agentClient';
import type { StartRunOptions } from '../../agent/client/startRun';
import type { RunSpecInput } from '../../agent/protocol';

export interface BuildOnce<T> {
  /** The notification's title: `ByteNite: deploying web`. */
  title: string;
  /** The Dockerfile as the user knows it, for the failure's words. */
  rel: string;
  run: Omit<StartRunOptions, 'buildOnly' | 'onEvent'>;
  /** What comes after the build: `registering the endpoint…`. */
  registering: string;
  register(spec: RunSpecInput): Promise<T>;
}

export async function buildOnce<T>(client: AgentClient, o: BuildOnce<T>): Promise<T> {
  // Loaded when first used: the start of the extension does not need the run client's code.
  const { startRun } = await import('../../agent/client/startRun');
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: o.title, cancellable: false }, async (progress) => {
    progress.report({ message: 'building…' });
    const started = await startRun(client, {
      ...o.run, buildOnly: true,
      onEvent: (_seq, e) => {
        if (e.kind === 'uploading') progress.report({ message: `uploading the context: ${Math.round((100 * e.bytesDone) / Math.max(1, e.bytesTotal))}%` });
        else if (e.kind === 'building') progress.report({ message: `building: step ${e.step}/${e.steps}${e.cached ? ' (cached)' : ''}` });
        else if (e.kind === 'queued') progress.report({ message: `queued (${e.position} ahead)` });
      },
    });
    const final = await started.done;
    if (final.kind !== 'exited') throw new Error(`the build of ${o.rel} ${final.kind === 'failed' ? `failed: ${final.message}` : 'was cancelled'}`);
    progress.report({ message: o.registering });
    return o.register(started.spec);
  });
}
