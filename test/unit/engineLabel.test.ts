import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineLabel } from '../../extension/agents/engineLabel';

test('the status bar names the engine, its version and the context it came from', () => {
  assert.equal(engineLabel('Docker Engine 20.10.24+dfsg1 (API 1.41) at unix:///var/run/docker.sock (the default socket)'), 'Docker 20.10.24+dfsg1');
  assert.equal(
    engineLabel('Docker Engine 27.1.1 (API 1.46) at unix:///Users/a/.colima/default/docker.sock (context "colima", the current one in ~/.docker/config.json)'),
    'Docker 27.1.1 · colima',
  );
  assert.equal(engineLabel('Podman 4.3.1 (API 1.41) at unix:///run/podman/podman.sock (DOCKER_HOST)'), 'Podman 4.3.1');
  assert.equal(engineLabel('Docker Engine 24.0.7 (API 1.43) at ssh://ci@build-box (DOCKER_HOST)'), 'Docker 24.0.7 · ci@build-box');
  assert.equal(engineLabel('docker'), 'docker');
});
