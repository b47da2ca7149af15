// The pure parts of the Docker engine: the attach stream demuxer, build progress and stats arithmetic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerStreamDemuxer } from '../../agent/engine/dockerStream';
import { applyBuildProgress, newBuildProgress } from '../../agent/engine/buildProgress';
import { statsSample } from '../../agent/engine/dockerStats';
import type { BuildStep } from '../../agent/engine/engine';

function frame(stream: 1 | 2, text: string | Buffer): Buffer {
  const body = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(body.length, 4);
  return Buffer.concat([h, body]);
}

test('the demuxer keeps stdout and stderr apart and in order, whatever the chunking', () => {
  const all = Buffer.concat([frame(1, 'a\n'), frame(1, 'b\n'), frame(2, 'E\n'), frame(1, 'c\n'), frame(1, 'é'.repeat(3))]);
  for (const cut of [1, 3, 7, 8, 9, all.length]) {
    const got: Array<[string, string]> = [];
    const d = new DockerStreamDemuxer((s, t) => got.push([s, t]));
    for (let i = 0; i < all.length; i += cut) d.push(all.subarray(i, i + cut));
    d.end();
    const joined = got.reduce<Array<[string, string]>>((acc, [s, t]) => {
      if (acc.length && acc[acc.length - 1][0] === s) acc[acc.length - 1][1] += t;
      else acc.push([s, t]);
      return acc;
    }, []);
    assert.deepEqual(joined, [['stdout', 'a\nb\n'], ['stderr', 'E\n'], ['stdout', 'c\néé\u00e9']], `chunk size ${cut}`);
  }
});

test('adjacent frames of one stream that arrive together become one piece', () => {
  const got: string[] = [];
  const d = new DockerStreamDemuxer((_s, t) => got.push(t));
  d.push(Buffer.concat([frame(1, '1\n'), frame(1, '2\n'), frame(1, '3\n')]));
  assert.deepEqual(got, ['1\n2\n3\n']);
});

test('a UTF-8 character split across frames is not mangled', () => {
  const euro = Buffer.from('€');
  const got: string[] = [];
  const d = new DockerStreamDemuxer((_s, t) => got.push(t));
  d.push(frame(1, euro.subarray(0, 1)));
  d.push(frame(1, euro.subarray(1)));
  assert.equal(got.join(''), '€');
});

test('build progress: steps, cache hits, the agent\'s own label steps hidden, errors kept', () => {
  const state = newBuildProgress();
  const steps: BuildStep[] = [];
  const logs: string[] = [];
  const feed = (o: object) => applyBuildProgress(state, o, (s) => steps.push(s), (l) => logs.push(l), 1);
  feed({ stream: 'Step 1/3 : FROM scratch\n' });
  feed({ stream: ' ---> \n' });
  feed({ stream: 'Step 2/3 : RUN echo hi\n' });
  feed({ stream: ' ---> Using cache\n' });
  feed({ stream: 'hi\n' });
  feed({ stream: 'Step 3/3 : LABEL io.bytenite.digest=abc\n' });
  feed({ aux: { ID: 'sha256:123' } });
  assert.deepEqual(steps.map((s) => [s.step, s.steps, s.cached]), [[1, 2, false], [2, 2, false], [2, 2, true]]);
  assert.equal(state.cachedSteps, 1);
  assert.equal(state.imageId, 'sha256:123');
  assert.deepEqual(logs, ['hi\n']);
  feed({ error: 'boom', errorDetail: { message: 'The command returned a non-zero code: 3' } });
  assert.equal(state.error, 'The command returned a non-zero code: 3');
});

test('stats: CPU percent from deltas (100 = one vCPU), memory without page cache', () => {
  const prev = { cpu_stats: { cpu_usage: { total_usage: 1_000 }, system_cpu_usage: 10_000, online_cpus: 2 } };
  const cur = {
    cpu_stats: { cpu_usage: { total_usage: 3_000 }, system_cpu_usage: 14_000, online_cpus: 2 },
    memory_stats: { usage: 50_000, limit: 100_000, stats: { cache: 10_000 } }, pids_stats: { current: 3 },
  };
  assert.deepEqual(statsSample(prev, cur), { cpuPercent: 100, memoryBytes: 40_000, memoryLimitBytes: 100_000, pids: 3 });
});
