// What a piped `bytenite run` prints of a build: each step once, when it ends, with its time or that it came
// from cache (BuildKit says when a step ends; a legacy step is printed once its cached flag is known), the
// finished upload once, and which builder built.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { RunReporter } from '../../agent/cli/runReporter';
import type { RunEvent } from '../../agent/protocol';

function piped(events: RunEvent[]): string {
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (d) => (text += d));
  const r = new RunReporter({ json: false, tty: false, stdout: new PassThrough(), stderr });
  for (const [i, e] of events.entries()) r.event('r-000000', i + 1, e);
  r.flush();
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

const step = (n: number, extra: Partial<Extract<RunEvent, { kind: 'building' }>>): RunEvent =>
  ({ kind: 'building', step: n, steps: 2, instruction: `RUN s${n}`, cached: false, ...extra });

test('BuildKit steps print once each, when they end', () => {
  const text = piped([
    { kind: 'uploading', bytesDone: 100, bytesTotal: 100 }, { kind: 'uploading', bytesDone: 100, bytesTotal: 100 },
    step(1, { cached: true, state: 'done', ms: 0 }), step(2, { state: 'started' }), step(2, { state: 'done', ms: 1500 }),
    { kind: 'uploading', to: 'engine', bytesDone: 0, bytesTotal: 2048 }, { kind: 'uploading', to: 'engine', bytesDone: 2048, bytesTotal: 2048 },
    { kind: 'starting', start: 'cold', image: 'sha256:x', steps: 2, cachedSteps: 1, builder: 'buildkit' },
  ]);
  assert.equal(text.match(/uploading context/g)?.length, 1, text);
  assert.match(text, /cold start: built 2 steps, 1 from cache by BuildKit, 2\.0 KiB of files sent to the engine\n/);
  assert.doesNotMatch(text, /sending context/, 'piped: no progress line for the engine\'s transfer');
  assert.match(text, /build step 1\/2: RUN s1 \(cached\)/);
  assert.match(text, /build step 2\/2: RUN s2 \(1\.50? s\)/);
  assert.equal(text.match(/build step/g)?.length, 2, text);
});

test('BuildKit with nothing to send: the cold start says the engine\'s copy had it all', () => {
  const text = piped([
    { kind: 'uploading', to: 'engine', bytesDone: 0, bytesTotal: 0 },
    { kind: 'starting', start: 'cold', image: 'sha256:x', steps: 2, cachedSteps: 2, builder: 'buildkit' },
  ]);
  assert.match(text, /cold start: built 2 steps, 2 from cache by BuildKit, no file sent to the engine \(its copy had what the build reads\)/);
});

test('legacy steps print once each, with the cached flag that came after their start', () => {
  const text = piped([
    step(1, {}), step(1, { cached: true }), step(2, {}),
    { kind: 'starting', start: 'cold', image: 'sha256:x', steps: 2, cachedSteps: 1, builder: 'legacy' },
  ]);
  assert.equal(text.match(/build step/g)?.length, 2, text);
  assert.match(text, /build step 1\/2: RUN s1 \(cached\)\n/);
  assert.match(text, /build step 2\/2: RUN s2\n/);
  assert.match(text, /by the legacy builder/);
});
