import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCpus, parseDuration, parseGpu, parseMemory, readHardwareLabels } from '../../agent/hardware/sizes';

test('memory sizes read as docker reads them, in MiB', () => {
  assert.equal(parseMemory('512m'), 512);
  assert.equal(parseMemory('4g'), 4096);
  assert.equal(parseMemory('4GiB'), 4096);
  assert.equal(parseMemory('1.5g'), 1536);
  assert.equal(parseMemory(String(64 * 1024 * 1024)), 64);
  assert.throws(() => parseMemory('lots'), /cannot read memory size "lots"/);
  assert.throws(() => parseMemory('4096'), /6 MiB minimum/);
});

test('cpus, gpus and durations', () => {
  assert.equal(parseCpus('0.5'), 0.5);
  assert.throws(() => parseCpus('-1'));
  assert.deepEqual(parseGpu('H100:2'), { type: 'h100', count: 2 });
  assert.deepEqual(parseGpu('l4'), { type: 'l4', count: 1 });
  assert.throws(() => parseGpu('h100:0'));
  assert.equal(parseDuration('90'), 90_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1500ms'), 1500);
  assert.throws(() => parseDuration('soon'), /cannot read duration/);
});

test('hardware labels are read from a Dockerfile, with continuations and quotes; typos are reported', () => {
  const labels = readHardwareLabels([
    'FROM scratch',
    'LABEL bytenite.cpus=2 \\',
    '      bytenite.memory="4g" other=1',
    'label bytenite.gpu=h100:1',
    'LABEL bytenite.cpu=3',
  ].join('\n'));
  assert.equal(labels.cpus, 2);
  assert.equal(labels.memoryMiB, 4096);
  assert.deepEqual(labels.gpu, { type: 'h100', count: 1 });
  assert.equal(labels.problems.length, 1);
  assert.match(labels.problems[0], /unknown label bytenite\.cpu\b/);
  assert.deepEqual(readHardwareLabels('FROM x\nLABEL bytenite.memory=huge').problems.length, 1);
});
