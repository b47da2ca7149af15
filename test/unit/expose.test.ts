import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exposedPorts } from '../../extension/dockerfiles/expose';

test('EXPOSE lines give the TCP ports a run proposes to forward, in order, once each', () => {
  const text = [
    'FROM python:3.12',
    '# EXPOSE 1111 is a comment',
    'EXPOSE 8000',
    'expose 9000/tcp 5353/udp 8000',
    'EXPOSE 7000-7002 \\',
    '  6006',
    'EXPOSE $PORT ${OTHER}',
    'CMD ["uvicorn", "app:app", "--port", "8000"]',
  ].join('\n');
  assert.deepEqual(exposedPorts(text), [8000, 9000, 7000, 7001, 7002, 6006]);
});

test('no EXPOSE, or only UDP and variables: nothing to propose', () => {
  assert.deepEqual(exposedPorts('FROM scratch\nCMD ["x"]\n'), []);
  assert.deepEqual(exposedPorts('FROM scratch\nEXPOSE 53/udp $P\n'), []);
  assert.deepEqual(exposedPorts('FROM scratch\nEXPOSE 70000 0\n'), []);
});

test('a wide range is cut at 16 ports rather than proposing thousands', () => {
  assert.equal(exposedPorts('EXPOSE 10000-20000').length, 16);
});
