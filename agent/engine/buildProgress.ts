/**
 * Reads the legacy builder's progress (JSON objects with `stream`, `error`, `aux.ID`) into build steps.
 * The legacy builder is used because its output says plainly which step runs and whether it came from
 * the cache (" ---> Using cache"); BuildKit through the API needs a session and reports steps differently.
 */
import type { BuildStep } from './engine';

const STEP = /^Step (\d+)\/(\d+) : (.*)$/;

export interface BuildProgressState {
  current?: BuildStep;
  steps: number;
  cachedSteps: number;
  imageId?: string;
  error?: string;
  /** Short ids of the images the build made (steps not taken from the cache): its build cache. */
  made: string[];
}

export function newBuildProgress(): BuildProgressState {
  return { steps: 0, cachedSteps: 0, made: [] };
}

/**
 * The engine turns the build's `labels` into LABEL steps of its own at the end of the Dockerfile; they are
 * the agent's bookkeeping, not the user's steps, so progress leaves them out.
 */
const AGENT_STEP = /^LABEL io\.bytenite\./;

/**
 * Applies one progress object. Calls `onStep` when a step starts (again, with `cached: true`, once the
 * engine says it came from the cache) and `onLog` with build output that is not step bookkeeping.
 */
export function applyBuildProgress(
  state: BuildProgressState,
  item: { stream?: string; error?: string; errorDetail?: { message?: string }; aux?: { ID?: string } },
  onStep: (s: BuildStep) => void,
  onLog: (text: string) => void,
  hiddenSteps = 0,
): void {
  if (item.error) {
    state.error = item.errorDetail?.message ?? item.error;
    return;
  }
  if (item.aux?.ID) state.imageId = item.aux.ID;
  if (typeof item.stream !== 'string') return;
  for (const line of item.stream.split('\n')) {
    const step = STEP.exec(line);
    if (step) {
      if (AGENT_STEP.test(step[3])) {
        state.current = undefined;
        continue;
      }
      state.current = { step: Number(step[1]), steps: Number(step[2]) - hiddenSteps, instruction: step[3], cached: false };
      state.steps = state.current.steps;
      onStep(state.current);
    } else if (line.trim() === '---> Using cache' && state.current && !state.current.cached) {
      state.current = { ...state.current, cached: true };
      state.cachedSteps++;
      onStep(state.current);
    } else if (/^ ---> [0-9a-f]{12,64}$/.test(line)) {
      if (!state.current?.cached) state.made.push(line.slice(6, 18));
    } else if (line.length && !/^ ---> |^Removing intermediate container |^Successfully (built|tagged) /.test(line)) {
      onLog(line + '\n');
    }
  }
}
