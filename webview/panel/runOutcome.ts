/** Words for how a run started (warm or cold, and why) and how it ended (exit code, OOM kill, failure). */
import type { FinalEvent, StartKind } from '../protocol';

export interface StartKindText {
  kind: StartKind;
  /** Why it was warm or cold, in one sentence. */
  reason: string;
}

export function startKindText(kind: StartKind, steps: number, cachedSteps: number): StartKindText {
  if (kind === 'hot') {
    return { kind, reason: 'The image was reused and its container had been started ahead of time: it only waited for this run.' };
  }
  if (kind === 'warm') {
    return { kind, reason: 'An image built from the same files, Dockerfile and build args was reused: no upload, no build.' };
  }
  const built = steps > 0 ? ` Built ${steps} step${steps === 1 ? '' : 's'}, ${cachedSteps} from the build cache.` : '';
  return { kind, reason: `No image for this exact context on the agent yet, so it was uploaded and built.${built}` };
}

export type Tone = 'ok' | 'warning' | 'error';

export interface ExitText {
  /** Short: what the exit badge says. */
  title: string;
  /** A sentence: what happened and what to do. */
  detail?: string;
  tone: Tone;
  oom: boolean;
}

const SIGNALS: Record<number, string> = { 130: 'interrupted (SIGINT)', 137: 'killed (SIGKILL)', 139: 'segmentation fault (SIGSEGV)', 143: 'terminated (SIGTERM)' };

export function exitText(f: FinalEvent, memory?: string): ExitText {
  const t = baseExitText(f, memory);
  const lost = f.outputs.notKept;
  if (!lost) return t;
  // The program may have done its job, but its result is not here: never let that read as a plain success.
  return {
    ...t, title: `${t.title}; outputs not kept`, detail: t.detail ? `${t.detail} ${capitalize(lost)}.` : `${capitalize(lost)}.`,
    tone: t.tone === 'ok' ? 'warning' : t.tone,
  };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function baseExitText(f: FinalEvent, memory?: string): ExitText {
  const code = f.exitCode;
  if (f.oomKilled) {
    return {
      title: `Out of memory: killed${code !== null ? ` (exit code ${code})` : ''}`,
      detail: `The container used all of its memory limit${memory ? ` (${memory})` : ''} and the kernel killed it. Choose more memory and run again.`,
      tone: 'error', oom: true,
    };
  }
  if (f.kind === 'failed') {
    return { title: `Failed (${f.code})${code !== null ? `, exit code ${code}` : ''}`, detail: f.message, tone: 'error', oom: false };
  }
  if (f.kind === 'cancelled') {
    return { title: code === null ? 'Stopped' : `Stopped (exit code ${code})`, tone: 'warning', oom: false };
  }
  if (code === 0) return { title: 'Exited with code 0', tone: 'ok', oom: false };
  const signal = code !== null ? SIGNALS[code] : undefined;
  return { title: `Exited with code ${code}`, detail: signal ? `The process was ${signal}.` : undefined, tone: 'error', oom: false };
}
