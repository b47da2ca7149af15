/**
 * Reads the legacy builder's progress (JSON objects with `stream`, `error`, `aux.ID`) into build steps.
 * The legacy builder is used because its output says plainly which step runs and whether it came from
 * the cache (" ---> Using cache"); BuildKit through the API needs a session and reports steps differently.
 */
import type { BuildStep } from './engine';

/**
 * Docker's builder writes `Step 2/7 : COPY …`, ` ---> Using cache`, ` ---> 0123456789ab`; Podman's (buildah
 * behind the same API) writes `STEP 2/7: COPY …`, `--> Using cache <full id>`, `--> 0123456789a` (11 hex
 * digits) and `COMMIT <tag>`: both are read here.
 */
const STEP = /^(?:Step|STEP) (\d+)\/(\d+) ?: (.*)$/;
const USING_CACHE = /^ ?---?> Using cache( [0-9a-f]{64})?$/;
const MADE = /^ ?---?> ([0-9a-f]{11,64})$/;
const BOOKKEEPING = /^ ?---?> |^Removing intermediate container |^Successfully (built|tagged) |^COMMIT |^[0-9a-f]{64}$/;

export interface BuildProgressState {
  current?: BuildStep;
  steps: number;
  cachedSteps: number;
  imageId?: string;
  error?: string;
  /** Short ids of the images the build made (steps not taken from the cache): its build cache. Buildah's are 11 hex digits. */
  made: string[];
}

export function newBuildProgress(): BuildProgressState {
  return { steps: 0, cachedSteps: 0, made: [] };
}

/**
 * The engine turns the build's `labels` into LABEL steps of its own at the end of the Dockerfile; they are
 * the agent's bookkeeping, not the user's steps, so progress leaves them out.
 */
const AGENT_STEP = /^LABEL "?io\.bytenite\./;

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
    } else if (USING_CACHE.test(line.trimEnd()) && state.current && !state.current.cached) {
      state.current = { ...state.current, cached: true };
      state.cachedSteps++;
      onStep(state.current);
    } else if (MADE.test(line)) {
      if (!state.current?.cached) state.made.push(MADE.exec(line)![1].slice(0, 12));
    } else if (line.length && !BOOKKEEPING.test(line)) {
      onLog(line + '\n');
    }
  }
}
