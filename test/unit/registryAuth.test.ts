// Registry credentials from a Docker config, as the session's Auth service and the legacy builder's
// X-Registry-Config get them, and the words of a registry refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RegistryAuth, TenantRegistryAuth, explainRegistryError, registryHost } from '../../agent/build/registryAuth';

const b64 = (s: string) => Buffer.from(s).toString('base64');
function configFile(content: unknown): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'bytenite-auth-')), 'config.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

test('credentials come from auths, by the host the engine asks for, as docker login wrote them', async () => {
  const auth = RegistryAuth.fromFlag(configFile({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub-user:hub:pass') },
      'REG.example.com:5000': { auth: b64('alice:pw') },
      'https://ghcr.io/v2/': { username: 'bob', password: 'token' },
      'acr.example.io': { identitytoken: 'idt' },
      'broken.example': { auth: b64('no-colon') },
    },
  }));
  assert.deepEqual(await auth.credentials('registry-1.docker.io'), { username: 'hub-user', secret: 'hub:pass' }, 'a password may hold a colon');
  assert.deepEqual(await auth.credentials('reg.example.com:5000'), { username: 'alice', secret: 'pw' });
  assert.deepEqual(await auth.credentials('ghcr.io'), { username: 'bob', secret: 'token' });
  assert.deepEqual(await auth.credentials('acr.example.io'), { username: '', secret: 'idt' });
  assert.equal(await auth.credentials('broken.example'), undefined);
  assert.equal(await auth.credentials('other.example'), undefined);
  assert.deepEqual(Object.keys(await auth.registryConfig()).sort(), ['REG.example.com:5000', 'acr.example.io', 'https://ghcr.io/v2/', 'https://index.docker.io/v1/']);
  assert.equal(registryHost('https://Index.Docker.io/v1/'), 'https://index.docker.io/v1/');
});

test('the owner\'s config may be missing (anonymous); a --registry-auth file must be readable JSON', async () => {
  assert.equal(await new RegistryAuth('/nonexistent/config.json').credentials('ghcr.io'), undefined);
  assert.throws(() => RegistryAuth.fromFlag('/nonexistent/config.json'), /--registry-auth \/nonexistent\/config.json: no such file/);
  assert.throws(() => RegistryAuth.fromFlag(configFile('{not json')), /is not JSON .*"auths"/);
});

test('a registry refusal says which registry and what to do, and never a credential', () => {
  const file = configFile({ auths: { '127.0.0.1:5000': { auth: b64('alice:s3cret') } } });
  const auth = RegistryAuth.fromFlag(file);
  const refused = explainRegistryError('pulling from host 127.0.0.1:5000 failed with status code [manifests v1]: 401 Unauthorized', auth)!;
  assert.match(refused, /^pulling from host .*401 Unauthorized\n.*127\.0\.0\.1:5000 refused the credentials the agent has for it in .*config\.json/);
  assert.doesNotMatch(refused, /s3cret|alice/);
  const none = explainRegistryError('Head "http://10.0.0.9:5000/v2/base/manifests/t1": no basic auth credentials', auth)!;
  assert.match(none, /no credentials for 10\.0\.0\.9:5000 in .*: run `docker login 10\.0\.0\.9:5000`.*--registry-auth FILE/);
  assert.equal(explainRegistryError('COPY failed: file not found', auth), undefined);
});

test('a credential helper (credsStore, credHelpers) answers first, as docker login on Docker Desktop keeps them', async () => {
  // A helper of the test's own on PATH, answering as docker-credential-* do.
  const bin = mkdtempSync(path.join(os.tmpdir(), 'bytenite-helper-'));
  const helper = path.join(bin, 'docker-credential-bntest');
  writeFileSync(helper, [
    '#!/bin/sh', 'read host', 'case "$1" in',
    '  get) case "$host" in',
    '    helped.example:5000) echo \'{"ServerURL":"helped.example:5000","Username":"carol","Secret":"from-helper"}\' ;;',
    '    tok.example) echo \'{"ServerURL":"tok.example","Username":"<token>","Secret":"idt"}\' ;;',
    '    *) echo "credentials not found in native keychain"; exit 1 ;;', '  esac ;;',
    '  list) echo \'{"helped.example:5000":"carol","tok.example":"<token>"}\' ;;', 'esac', '',
  ].join('\n'));
  chmodSync(helper, 0o755);
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath}`;
  try {
    const auth = RegistryAuth.fromFlag(configFile({
      credsStore: 'bntest', credHelpers: { 'only.example': 'missing-helper' }, auths: { 'plain.example': { auth: b64('dave:pw') }, 'helped.example:5000': {} },
    }));
    assert.deepEqual(await auth.credentials('helped.example:5000'), { username: 'carol', secret: 'from-helper' });
    assert.deepEqual(await auth.credentials('tok.example'), { username: '', secret: 'idt' });
    assert.deepEqual(await auth.credentials('plain.example'), { username: 'dave', secret: 'pw' }, 'the store has none: auths still count');
    assert.equal(await auth.credentials('only.example'), undefined, 'a helper that is not installed: anonymous');
    assert.deepEqual(await auth.registryConfig(), {
      'plain.example': { username: 'dave', password: 'pw', serveraddress: 'plain.example' },
      'helped.example:5000': { username: 'carol', password: 'from-helper', serveraddress: 'helped.example:5000' },
      'tok.example': { identitytoken: 'idt', serveraddress: 'tok.example' },
    });
    assert.match(explainRegistryError('pulling from host helped.example:5000 failed: 401 Unauthorized', auth)!,
      /refused the credentials of docker-credential-bntest \(named in .*config\.json\), or it had none/);
  } finally {
    process.env.PATH = oldPath;
  }
});

test('per tenant: a tenant\'s own file, the owner\'s for the default tenant only', () => {
  const owner = new RegistryAuth('/nonexistent/owner.json');
  const alice = new RegistryAuth('/nonexistent/alice.json');
  const byTenant = new TenantRegistryAuth(owner, new Map([['alice', alice]]));
  assert.equal(byTenant.for('default'), owner);
  assert.equal(byTenant.for(), owner);
  assert.equal(byTenant.for('alice'), alice);
  assert.equal(byTenant.for('mallory'), undefined, 'another tenant never gets the owner\'s credentials');
  assert.match(explainRegistryError('pulling from host reg.example:5000 failed: 401 Unauthorized', undefined, 'mallory')!,
    /tenant "mallory" has no registry credentials on this agent .*--tenant-registry-auth mallory=FILE/);
});
