// An engine reached over SSH, as the docker CLI reaches `ssh://` contexts: an sshd on loopback (Debian's
// openssh-server) with keys made here, the user's SSH agent holding the client key, and the engine spoken to
// through `docker system dial-stdio` on the other side. The host key is checked against known_hosts: a host
// that is not there is refused, with what to do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cleanup, freePort, makeContext, runCli, tmpDir } from './helpers';

const dirs: string[] = [];
const procs: ChildProcess[] = [];
let home: string;
let port: number;
let agentSock: string;
let hostLine: string;

async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  assert.ok(existsSync('/usr/sbin/sshd'), 'sshd is missing: scripts/setup.sh --tests installs openssh-server');
  const dir = tmpDir('bytenite-ssh-');
  dirs.push(dir);
  home = path.join(dir, 'home');
  mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'client_key')]);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'client_key.pub')), { mode: 0o600 });
  port = await freePort();
  writeFileSync(path.join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${path.join(dir, 'host_key')}`, `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
    `PidFile ${path.join(dir, 'sshd.pid')}`, 'AllowTcpForwarding no', 'X11Forwarding no',
  ].join('\n') + '\n');
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation folder
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(sshd);
  let sshdLog = '';
  sshd.stderr!.on('data', (d) => (sshdLog += d));
  await until(`sshd listening (${sshdLog})`, 10_000, () => /Server listening/.test(sshdLog));
  agentSock = path.join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
  procs.push(agent);
  await until('ssh-agent socket', 10_000, () => existsSync(agentSock));
  execFileSync('ssh-add', ['-q', path.join(dir, 'client_key')], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'ignore' });
  const [type, blob] = readFileSync(path.join(dir, 'host_key.pub'), 'utf8').split(' ');
  hostLine = `[127.0.0.1]:${port} ${type} ${blob}\n`;
});
after(() => {
  for (const p of procs) p.kill('SIGTERM');
  cleanup(...dirs);
});

const env = () => ({ HOME: home, SSH_AUTH_SOCK: agentSock, DOCKER_HOST: `ssh://root@127.0.0.1:${port}`, DOCKER_CONTEXT: '', DOCKER_CONFIG: path.join(home, '.docker') });

test('a run on an engine reached over ssh:// through the user\'s SSH agent', async () => {
  writeFileSync(path.join(home, '.ssh', 'known_hosts'), hostLine);
  const ctx = makeContext({}, 'CMD ["echo", "over ssh"]\n', { uniq: true });
  dirs.push(ctx);
  const r = await runCli(['run', path.join(ctx, 'Dockerfile')], { env: env() });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'over ssh\n');
  // Built by the remote engine's BuildKit, its session carried by a dial-stdio channel of its own.
  assert.match(r.stderr, /by BuildKit/, r.stderr);
  const hw = await runCli(['hardware'], { env: env() });
  assert.match(hw.stdout, new RegExp(`^Engine: Docker Engine .* at ssh://root@127\\.0\\.0\\.1:${port} \\(DOCKER_HOST\\)$`, 'm'));
});

test('a host whose key is not in known_hosts is refused, with what to do', async () => {
  writeFileSync(path.join(home, '.ssh', 'known_hosts'), '');
  const ctx = makeContext({}, 'CMD ["echo", "never"]\n', { uniq: true });
  dirs.push(ctx);
  const r = await runCli(['run', path.join(ctx, 'Dockerfile')], { env: env() });
  assert.equal(r.code, 125);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`\\[127\\.0\\.0\\.1\\]:${port} is not in known_hosts: connect once with \`ssh\``));
});
