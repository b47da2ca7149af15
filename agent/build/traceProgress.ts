/**
 * BuildKit's own progress, as `/build` streams it: `{"id":"moby.buildkit.trace","aux":"<base64>"}` lines, each
 * a StatusResponse with partial updates of the build graph's vertexes (merged by digest), transfer statuses
 * and RUN output. Turned into the agent's `building` steps (an instruction's vertex, `[2/3] RUN …`, when it
 * starts and when it ends, with its time; a cached one only when done) and `build` log lines.
 */
import type { BuildStep } from '../engine/engine';
import { StatusResponseCodec, type PbTimestamp } from './protos';

/** `[2/3] RUN x`, `[stage-1 2/3] COPY …`: the Dockerfile's instructions (not `[internal] load …`). */
const INSTRUCTION = /^\[(?:[^\]\s]+ )?\d+\/\d+\] (.+)$/s;

interface VertexState {
  name: string;
  step?: number;
  started?: PbTimestamp;
  completed?: PbTimestamp;
  cached: boolean;
  toldStart: boolean;
  toldDone: boolean;
}

export class TraceProgress {
  private readonly vertexes = new Map<string, VertexState>();
  private steps = 0;
  cachedSteps = 0;
  imageId?: string;
  error?: string;

  constructor(private readonly onStep: (s: BuildStep) => void, private readonly onLog: (text: string) => void) {}

  get stepCount(): number {
    return this.steps;
  }

  /** Applies one JSON object of the `/build` stream. */
  apply(item: { id?: string; aux?: unknown; stream?: string; error?: string; errorDetail?: { message?: string } }): void {
    if (item.error || item.errorDetail) {
      this.error = item.errorDetail?.message || item.error;
      return;
    }
    if (item.id === 'moby.image.id') {
      const id = (item.aux as { ID?: unknown } | undefined)?.ID;
      if (typeof id === 'string') this.imageId = id;
      return;
    }
    if (item.id === 'moby.buildkit.trace' && typeof item.aux === 'string') {
      this.applyStatus(Buffer.from(item.aux, 'base64'));
      return;
    }
    // The engine's own tagging note is bookkeeping, as in the legacy builder's output.
    if (typeof item.stream === 'string' && item.stream && !/^Successfully tagged /.test(item.stream)) this.onLog(item.stream);
  }

  applyStatus(bytes: Uint8Array): void {
    const s = StatusResponseCodec.decode(bytes);
    for (const v of s.vertexes ?? []) {
      if (!v.digest) continue;
      let st = this.vertexes.get(v.digest);
      if (!st) {
        st = { name: v.name ?? '', cached: false, toldStart: false, toldDone: false };
        this.vertexes.set(v.digest, st);
      }
      if (v.name) st.name = v.name;
      if (v.started) st.started = v.started;
      if (v.completed) st.completed = v.completed;
      if (v.cached) st.cached = true;
      const m = INSTRUCTION.exec(st.name);
      if (!m) continue;
      st.step ??= ++this.steps;
      const vs = st;
      const step = (state: 'started' | 'done'): BuildStep => ({
        step: vs.step!, steps: Math.max(this.steps, vs.step!), instruction: m[1], cached: vs.cached, state,
        ...(state === 'done' ? { ms: vs.cached ? 0 : Math.round(timing(vs.started, vs.completed) ?? 0) } : {}),
      });
      // A cached step is only ever done; another is told when it starts and when it ends.
      if (st.cached) {
        if (!st.toldDone) {
          st.toldDone = st.toldStart = true;
          this.cachedSteps++;
          this.onStep(step('done'));
        }
        continue;
      }
      if (st.started && !st.toldStart) {
        st.toldStart = true;
        this.onStep(step('started'));
      }
      if (st.completed && !st.toldDone) {
        st.toldDone = true;
        this.onStep(step('done'));
      }
    }
    for (const l of s.logs ?? []) {
      if (l.msg?.length) this.onLog(Buffer.from(l.msg).toString('utf8'));
    }
  }
}

function ms(t?: PbTimestamp): number | undefined {
  if (!t) return undefined;
  const s = typeof t.seconds === 'object' ? t.seconds.toNumber() : Number(t.seconds ?? 0);
  return s * 1000 + (t.nanos ?? 0) / 1e6;
}

/** A step's time from its start and end, when both are known. */
export function timing(started?: PbTimestamp, completed?: PbTimestamp): number | undefined {
  const a = ms(started);
  const b = ms(completed);
  return a !== undefined && b !== undefined ? Math.max(0, b - a) : undefined;
}
