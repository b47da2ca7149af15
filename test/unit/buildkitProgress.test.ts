// The pieces of the BuildKit session that need no engine: gRPC framing cut anywhere, BuildKit's trace
// turned into steps and build output, and moby's pattern semantics.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrpcDeframer, frame } from '../../agent/build/grpcFraming';
import { PatternMatcher } from '../../agent/build/patternMatcher';
import { StatusResponseCodec, type StatusResponse } from '../../agent/build/protos';
import { TraceProgress } from '../../agent/build/traceProgress';
import type { BuildStep } from '../../agent/engine/engine';

test('gRPC messages come out whole whatever the chunking', () => {
  const msgs = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(70_000, 7)];
  const wire = Buffer.concat(msgs.map(frame));
  for (const cut of [1, 3, 5, 6, 4096]) {
    const d = new GrpcDeframer();
    const out: Buffer[] = [];
    for (let i = 0; i < wire.length; i += cut) out.push(...d.push(wire.subarray(i, i + cut)));
    assert.deepEqual(out.map((b) => b.length), [1, 0, 70_000]);
    assert.equal(d.pending, 0);
  }
  assert.throws(() => new GrpcDeframer().push(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
});

const trace = (s: StatusResponse) => ({ id: 'moby.buildkit.trace', aux: StatusResponseCodec.encode(s).toString('base64') });
const ts = (seconds: number) => ({ seconds, nanos: 0 });

test('BuildKit trace: a step when it starts and when it ends (a cached one only done), with its time; RUN output as log, the image id', () => {
  const steps: BuildStep[] = [];
  const logs: string[] = [];
  const p = new TraceProgress((s) => steps.push(s), (l) => logs.push(l));
  p.apply(trace({ vertexes: [
    { digest: 'sha256:i', name: '[internal] load build definition from Dockerfile', started: ts(1) },
    { digest: 'sha256:a', name: '[1/2] COPY busybox /bin/busybox' },
    { digest: 'sha256:b', name: '[2/2] RUN echo hi' },
  ] }));
  assert.equal(steps.length, 0, "nothing started yet");
  p.apply(trace({ vertexes: [{ digest: 'sha256:a', name: '[1/2] COPY busybox /bin/busybox', started: ts(2), completed: ts(2), cached: true }] }));
  p.apply(trace({ vertexes: [{ digest: 'sha256:b', name: '[2/2] RUN echo hi', started: ts(3) }] }));
  p.apply(trace({ logs: [{ vertex: 'sha256:b', stream: 1, msg: Buffer.from('hi\n') }] }));
  p.apply(trace({ vertexes: [{ digest: 'sha256:b', name: '[2/2] RUN echo hi', started: ts(3), completed: ts(4) }] }));
  p.apply({ id: 'moby.image.id', aux: { ID: 'sha256:img' } } as never);
  assert.deepEqual(steps.map((s) => [s.step, s.steps, s.instruction, s.cached, s.state, s.ms]), [
    [1, 2, 'COPY busybox /bin/busybox', true, 'done', 0],
    [2, 2, 'RUN echo hi', false, 'started', undefined],
    [2, 2, 'RUN echo hi', false, 'done', 1000],
  ]);
  assert.deepEqual(logs, ['hi\n']);
  assert.equal(p.cachedSteps, 1);
  assert.equal(p.imageId, 'sha256:img');
  p.apply({ errorDetail: { message: 'failed to solve: exit code 1' }, error: 'x' } as never);
  assert.equal(p.error, 'failed to solve: exit code 1');
});

test('patterns as moby reads them', () => {
  const m = new PatternMatcher(['*.log', '!keep.log', 'build', '**/*.tmp', 'a?c', 'lit\\*', 'x/**/y', '[ab].md']);
  const yes = ['x.log', 'build', 'build/out/app', 'z.tmp', 'deep/er/z.tmp', 'abc', 'lit*', 'x/y', 'x/1/2/y', 'a.md', 'x.log/inner'];
  const no = ['keep.log', 'sub/x.log', 'abbc', 'litx', 'c.md', 'builder', 'x/yy'];
  for (const p of yes) assert.equal(m.matchesOrParentMatches(p), true, p);
  for (const p of no) assert.equal(m.matchesOrParentMatches(p), false, p);
  assert.throws(() => new PatternMatcher(['!']), /illegal exclusion/);
});
