import assert from 'node:assert/strict';
import { test } from 'node:test';
import { baseImageHosts, hostOf } from '../../agent/build/baseImages';

test('the registry of an image reference, as Docker reads it', () => {
  assert.equal(hostOf('python:3.12'), 'https://index.docker.io/v1/');
  assert.equal(hostOf('library/debian'), 'https://index.docker.io/v1/');
  assert.equal(hostOf('ghcr.io/acme/tool:1'), 'ghcr.io');
  assert.equal(hostOf('localhost/x'), 'localhost');
  assert.equal(hostOf('127.0.0.1:5000/base:v1'), '127.0.0.1:5000');
});

test('base image hosts of a Dockerfile: stages, scratch, --platform, ARGs and continuations', () => {
  const df = [
    '# syntax comment',
    'ARG REG=registry.example.com:5000',
    'ARG TAG',
    'FROM --platform=linux/amd64 ${REG}/base:${TAG} AS build',
    'RUN make',
    'FROM build AS test',
    'FROM scratch',
    'FROM \\',
    '  ghcr.io/acme/runtime:1',
    'COPY --from=build /out /',
  ].join('\n');
  assert.deepEqual([...baseImageHosts(df, { TAG: 'v1' })].sort(), ['ghcr.io', 'registry.example.com:5000']);
  // An ARG with no value: the image cannot be known, so the host is unknown.
  assert.deepEqual([...baseImageHosts('ARG IMG\nFROM $IMG\n')], ['*']);
  assert.deepEqual([...baseImageHosts('FROM scratch\n')], []);
});
