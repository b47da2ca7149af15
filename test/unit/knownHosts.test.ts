// known_hosts as ssh reads it: plain and hashed names, [host]:port, a changed key, @revoked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { checkHostKey, knownHostName } from '../../agent/engine/knownHosts';

const key = randomBytes(51);
const other = randomBytes(51);
const b64 = key.toString('base64');

test('plain and hashed names, with the port when it is not 22', () => {
  assert.equal(knownHostName('gpu-box', 22), 'gpu-box');
  assert.equal(knownHostName('10.0.0.5', 2222), '[10.0.0.5]:2222');
  assert.deepEqual(checkHostKey([`a,gpu-box ssh-ed25519 ${b64}\n`], 'gpu-box', key), { ok: true });
  const salt = randomBytes(20);
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.5]:2222').digest('base64')}`;
  assert.deepEqual(checkHostKey([`# comment\n${hashed} ssh-ed25519 ${b64}\n`], '[10.0.0.5]:2222', key), { ok: true });
  assert.equal(checkHostKey([`${hashed} ssh-ed25519 ${b64}\n`], '10.0.0.5', key).ok, false);
});

test('unknown, changed and revoked keys are refused, each with its reason', () => {
  const unknown = checkHostKey([`other ssh-ed25519 ${b64}\n`], 'gpu-box', key);
  assert.ok(!unknown.ok && /not in known_hosts/.test(unknown.why));
  const changed = checkHostKey([`gpu-box ssh-ed25519 ${other.toString('base64')}\n`], 'gpu-box', key);
  assert.ok(!changed.ok && /not the one in known_hosts/.test(changed.why));
  const revoked = checkHostKey([`@revoked gpu-box ssh-ed25519 ${b64}\ngpu-box ssh-ed25519 ${b64}\n`], 'gpu-box', key);
  assert.ok(!revoked.ok && /@revoked/.test(revoked.why));
});
