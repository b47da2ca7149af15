/**
 * Fake run events for the webview tests and the browser harness: a cold run with a build, ANSI-coloured
 * stdout and stderr, stats and cost every second, and a final event (exit 0, or an OOM kill).
 */
import type { FinalEvent, RunEvent, SeqEvent } from '../../webview/protocol';

export interface FakeRunOptions {
  lines?: number;
  start?: 'warm' | 'cold';
  oom?: boolean;
  /** Epoch ms of the first event. */
  t0?: number;
}

export function fakeFinal(o: { oom?: boolean; start?: 'warm' | 'cold'; runMs?: number } = {}): FinalEvent {
  const runMs = o.runMs ?? 4200;
  return {
    kind: 'exited', exitCode: o.oom ? 137 : 0, oomKilled: !!o.oom, durationMs: runMs, start: o.start ?? 'cold',
    steps: o.start === 'warm' ? 0 : 3, cachedSteps: o.start === 'warm' ? 0 : 1,
    phases: { queuedMs: 12, uploadMs: o.start === 'warm' ? 0 : 340, buildMs: o.start === 'warm' ? 0 : 2100, startMs: 410, runMs },
    outputs: { files: 2, bytes: 2048 },
    cost: {
      currency: 'USD', total: 0.000412, vcpu: 0.000300, memory: 0.000112, gpu: 0, billedMs: 5000,
      reference: [{ name: 'AWS Fargate (us-east-1)', total: 0.000823 }, { name: 'GCP Cloud Run', total: 0.001234 }],
    },
  };
}

/** The events of one run, with seq from 1 and `at` one step apart. */
export function fakeRun(o: FakeRunOptions = {}): SeqEvent[] {
  const t0 = o.t0 ?? Date.UTC(2026, 0, 1, 12, 0, 0);
  const start = o.start ?? 'cold';
  const lines = o.lines ?? 20;
  const events: RunEvent[] = [{ kind: 'queued', position: 1 }];
  if (start === 'cold') {
    events.push(
      { kind: 'uploading', bytesDone: 0, bytesTotal: 4096 },
      { kind: 'uploading', bytesDone: 4096, bytesTotal: 4096 },
      { kind: 'building', step: 1, steps: 3, instruction: 'FROM python:3.12-slim', cached: true },
      { kind: 'log', stream: 'build', time: new Date(t0).toISOString(), data: 'Step 1/3 : FROM python:3.12-slim\n' },
      { kind: 'building', step: 2, steps: 3, instruction: 'COPY . /app', cached: false },
      { kind: 'building', step: 3, steps: 3, instruction: 'CMD ["python", "main.py"]', cached: false },
    );
  }
  events.push(
    { kind: 'starting', start, image: 'sha256:abc', cachedSteps: start === 'cold' ? 1 : 0, steps: start === 'cold' ? 3 : 0 },
    { kind: 'running', startedAt: new Date(t0 + 3000).toISOString() },
  );
  for (let i = 1; i <= lines; i++) {
    const time = new Date(t0 + 3000 + i).toISOString();
    if (i % 10 === 0) events.push({ kind: 'log', stream: 'stderr', time, data: `\x1b[31mwarning\x1b[0m: line ${i} went to stderr\n` });
    else events.push({ kind: 'log', stream: 'stdout', time, data: `line ${i} \x1b[1;32mok\x1b[0m processed item <${i}> & done\n` });
    if (i % 1000 === 0 || (lines < 1000 && i % 5 === 0)) {
      events.push({ kind: 'stats', cpuPercent: 50 + (i % 50), memoryBytes: (100 + (i % 30)) * 1048576, memoryLimitBytes: 4096 * 1048576, pids: 3 });
      events.push({ kind: 'cost', total: i * 1e-8, billedMs: i, currency: 'USD' });
    }
  }
  events.push(fakeFinal({ oom: o.oom, start }));
  return events.map((event, i) => ({ seq: i + 1, at: t0 + i * 10, event }));
}
