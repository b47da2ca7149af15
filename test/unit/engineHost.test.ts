// Finding the engine as the docker CLI does: the order of the sources, contexts read from the CLI's
// context store (with their TLS material), clear errors for a context that cannot be used, and the
// client options each kind of address gives.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EngineConfigError, dockerOptions, findEngine } from '../../agent/engine/engineHost';
import { SshDialAgent, explainSshFailure, parseSshUrl, sshCommand } from '../../agent/engine/sshDial';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A docker config folder with these contexts (name → host) and, if given, a current one. */
function config(contexts: Record<string, string>, current?: string, tls?: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bytenite-dockercfg-'));
  dirs.push(dir);
  if (current !== undefined) writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: {}, currentContext: current }));
  for (const [name, host] of Object.entries(contexts)) {
    const id = createHash('sha256').update(name).digest('hex');
    mkdirSync(path.join(dir, 'contexts', 'meta', id), { recursive: true });
    writeFileSync(path.join(dir, 'contexts', 'meta', id, 'meta.json'), JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }));
    if (tls === name) {
      mkdirSync(path.join(dir, 'contexts', 'tls', id, 'docker'), { recursive: true });
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(dir, 'contexts', 'tls', id, 'docker', f), `${f} of ${name}`);
    }
  }
  return dir;
}

describe('findEngine', () => {
  const cfg = config({ colima: 'unix:///home/u/.colima/default/docker.sock', remote: 'tcp://10.0.0.5:2376', box: 'ssh://ops@gpu-box:2222' }, 'colima', 'remote');

  test('the current context of config.json, when nothing else says', () => {
    const t = findEngine({ env: { DOCKER_CONFIG: cfg } });
    assert.equal(t.host, 'unix:///home/u/.colima/default/docker.sock');
    assert.match(t.how, /^context "colima", the current one in .*config\.json$/);
    assert.deepEqual(t.looked.slice(0, 2), ['DOCKER_HOST (not set)', 'DOCKER_CONTEXT (not set)']);
  });

  test('the order: --engine-host, --docker-context, DOCKER_HOST, DOCKER_CONTEXT, the current context, the default socket', () => {
    const env = { DOCKER_CONFIG: cfg, DOCKER_HOST: 'unix:///run/h.sock', DOCKER_CONTEXT: 'box' };
    assert.equal(findEngine({ env, engineHost: 'tcp://1.2.3.4:2375', context: 'remote' }).how, '--engine-host');
    assert.equal(findEngine({ env, context: 'remote' }).host, 'tcp://10.0.0.5:2376');
    assert.equal(findEngine({ env }).how, 'DOCKER_HOST');
    assert.equal(findEngine({ env: { ...env, DOCKER_HOST: '' } }).host, 'ssh://ops@gpu-box:2222');
    assert.equal(findEngine({ env: { DOCKER_CONFIG: cfg, DOCKER_CONTEXT: 'default' } }).host, 'unix:///home/u/.colima/default/docker.sock');
    const none = findEngine({ env: { DOCKER_CONFIG: config({}, 'default') } });
    assert.equal(none.host, 'unix:///var/run/docker.sock');
    assert.equal(none.how, 'the default socket');
    assert.equal(findEngine({ env: { DOCKER_CONFIG: config({}) }, platform: 'win32' }).host, 'npipe:////./pipe/docker_engine');
  });

  test('a context\'s TLS material comes with it, and makes a tcp engine https', () => {
    const t = findEngine({ env: { DOCKER_CONFIG: cfg }, context: 'remote' });
    assert.equal(t.tls?.ca?.toString(), 'ca.pem of remote');
    const o = dockerOptions(t);
    assert.deepEqual([o.protocol, o.host, o.port, o.cert?.toString()], ['https', '10.0.0.5', 2376, 'cert.pem of remote']);
  });

  test('a context named but missing, or broken, is an error that names it', () => {
    assert.throws(() => findEngine({ env: { DOCKER_CONFIG: cfg, DOCKER_CONTEXT: 'ghost' } }), (e: Error) => e instanceof EngineConfigError && /Docker context "ghost" is not in .*docker context ls/.test(e.message));
    const bad = config({ odd: 'localhost:2375' }, 'odd');
    assert.throws(() => findEngine({ env: { DOCKER_CONFIG: bad } }), /Docker context "odd": "localhost:2375" is not an engine address/);
  });

  test('client options: a socket path, plain tcp, and ssh through the user\'s own ssh', () => {
    assert.deepEqual(dockerOptions({ host: 'unix:///tmp/x.sock', how: '', looked: [] }), { socketPath: '/tmp/x.sock' });
    assert.deepEqual(dockerOptions({ host: 'tcp://h:2375', how: '', looked: [] }), { protocol: 'http', host: 'h', port: 2375 });
    const ssh = dockerOptions({ host: 'ssh://ops@gpu-box:2222', how: '', looked: [] }, {}) as { agent: SshDialAgent };
    assert.ok(ssh.agent instanceof SshDialAgent);
    assert.deepEqual(ssh.agent.ssh, { host: 'gpu-box', user: 'ops', port: 2222 });
  });

  test('the ssh command line is the docker CLI\'s, after BYTENITE_SSH_COMMAND\'s own words', () => {
    assert.deepEqual(sshCommand(parseSshUrl('ssh://gpu-box'), {}), {
      file: 'ssh', args: ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30', '-T', '--', 'gpu-box', 'docker', 'system', 'dial-stdio'],
    });
    assert.deepEqual(sshCommand(parseSshUrl('ssh://ops@[::1]:2222'), { BYTENITE_SSH_COMMAND: 'ssh -F /c/config -v' }), {
      file: 'ssh', args: ['-F', '/c/config', '-v', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30', '-T', '-l', 'ops', '-p', '2222', '--', '::1', 'docker', 'system', 'dial-stdio'],
    });
    assert.throws(() => parseSshUrl('ssh://box/var/run/docker.sock'), /takes no path/);
  });

  test('ssh failures say what to do', () => {
    const t = parseSshUrl('ssh://ops@box');
    assert.match(explainSshFailure(t, 'Host key verification failed.\n', 255), /host key is not in known_hosts .*connect once with `ssh ops@box`/);
    assert.match(explainSshFailure(t, 'ops@box: Permission denied (publickey).\n', 255), /no key was accepted .*ssh-add/);
    assert.match(explainSshFailure(t, 'bash: line 1: docker: command not found\n', 127), /docker CLI is not installed there/);
    assert.match(explainSshFailure(t, 'ssh: connect to host box port 22: Connection refused\n', 255), /^ssh to ops@box failed \(exit 255\): ssh: connect to host box port 22: Connection refused$/);
  });
});
