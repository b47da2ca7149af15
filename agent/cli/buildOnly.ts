/**
 * What `bytenite deploy` and `bytenite schedule add` do first: build the Dockerfile once (a `buildOnly` run,
 * warm and incremental like any run), its progress printed as `bytenite run` prints it. The spec it returns
 * names the image the endpoint or schedule is then registered with.
 */
import type { AgentClient } from '../client/agentClient';
import { startRun, type StartRunOptions } from '../client/startRun';
import type { RunSpecInput } from '../protocol';
import type { RunReporter } from './runReporter';

/** The built run's spec, or undefined once the failure has been reported. */
export async function buildOnly(client: AgentClient, reporter: RunReporter, opts: Omit<StartRunOptions, 'buildOnly' | 'onEvent'>): Promise<RunSpecInput | undefined> {
  const started = await startRun(client, {
    ...opts, buildOnly: true,
    // Its `exited` is the build's end, not a program's: the command says what it registered instead.
    onEvent: (seq, e, id) => { if (e.kind !== 'exited') reporter.event(id, seq, e); },
  });
  const final = await started.done;
  if (final.kind === 'exited') return started.spec;
  if (final.kind === 'failed') reporter.error(final.message);
  return undefined;
}
