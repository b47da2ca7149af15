// Registry credentials from a Docker config, as the session's Auth service and the legacy builder's
// X-Registry-Config get them, and the words of a registry refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RegistryAuth, explainRegistryError, registryHost } from '../../agent/build/registryAuth';

const b64 = (s: string) => Buffer.from(s).toString('base64');
function configFile(content: unknown): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'bytenite-auth-')), 'config.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

test('credentials come from auths, by the host the engine asks for, as docker login wrote them', () => {
  const auth = RegistryAuth.fromFlag(configFile({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub-user:hub:pass') },
      'REG.example.com:5000': { auth: b64('alice:pw') },
      'https://ghcr.io/v2/': { username: 'bob', password: 'token' },
      'acr.example.io': { identitytoken: 'idt' },
      'broken.example': { auth: b64('no-colon') },
    },
    credsStore: 'desktop',
  }));
  assert.deepEqual(auth.credentials('registry-1.docker.io'), { username: 'hub-user', secret: 'hub:pass' }, 'a password may hold a colon');
  assert.deepEqual(auth.credentials('reg.example.com:5000'), { username: 'alice', secret: 'pw' });
  assert.deepEqual(auth.credentials('ghcr.io'), { username: 'bob', secret: 'token' });
  assert.deepEqual(auth.credentials('acr.example.io'), { username: '', secret: 'idt' });
  assert.equal(auth.credentials('broken.example'), undefined);
  assert.equal(auth.credentials('other.example'), undefined);
  assert.deepEqual(Object.keys(auth.registryConfig()).sort(), ['REG.example.com:5000', 'acr.example.io', 'https://ghcr.io/v2/', 'https://index.docker.io/v1/']);
  assert.equal(registryHost('https://Index.Docker.io/v1/'), 'https://index.docker.io/v1/');
});

test('the owner\'s config may be missing (anonymous); a --registry-auth file must be readable JSON', () => {
  assert.equal(new RegistryAuth('/nonexistent/config.json').credentials('ghcr.io'), undefined);
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
