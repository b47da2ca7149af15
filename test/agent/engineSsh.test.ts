// An engine reached over SSH, as the docker CLI reaches `ssh://` contexts: the user's own `ssh` with its
// config, against an sshd on loopback (Debian's openssh-server) with keys made here, the user's SSH agent
// holding the client key, and the engine spoken to through `docker system dial-stdio` on the other side.
// The ssh config names the host by an alias only it knows (`gpu-box`), so a run that works proves the
// config was read. OpenSSH finds ~/.ssh through the passwd entry, not $HOME, so the config is passed with
// `-F` through BYTENITE_SSH_COMMAND, as a user would point GIT_SSH_COMMAND at one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, cleanup, freePort, makeContext, runCli, tmpDir } from './helpers';

const dirs: string[] = [];
const procs: ChildProcess[] = [];
let dir: string;
let home: string;
let port: number;
let agentSock: string;
let hostLine: string;
let sshConfig: string;
let knownHosts: string;

async function until(what: string, ms: number, ok: () => boolean): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  assert.ok(existsSync('/usr/sbin/sshd'), 'sshd is missing: scripts/setup.sh --tests installs openssh-server');
  dir = tmpDir('bytenite-ssh-');
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
  knownHosts = path.join(home, '.ssh', 'known_hosts');
  sshConfig = path.join(home, '.ssh', 'config');
  writeFileSync(sshConfig, [
    'Host gpu-box', '  HostName 127.0.0.1', `  Port ${port}`, '  User root', `  IdentityAgent ${agentSock}`,
    `  UserKnownHostsFile ${knownHosts}`, '  StrictHostKeyChecking yes', '  LogLevel ERROR',
  ].join('\n') + '\n');
});
after(() => {
  for (const p of procs) p.kill('SIGTERM');
  cleanup(...dirs);
});

const env = (over: Record<string, string> = {}) => ({
  HOME: home, SSH_AUTH_SOCK: '', DOCKER_HOST: 'ssh://gpu-box', DOCKER_CONTEXT: '', DOCKER_CONFIG: path.join(home, '.docker'),
  BYTENITE_SSH_COMMAND: `ssh -F ${sshConfig}`,
  // A data folder per call, so that nothing one call left (a login, a cache) serves the next.
  BYTENITE_DATA_DIR: mkdtempSync(path.join(dir, 'data-')),
  ...over,
});

test('a run on an engine reached over ssh:// through the user\'s ssh, its config and its agent', async () => {
  writeFileSync(knownHosts, hostLine);
  const ctx = makeContext({}, 'CMD ["echo", "over ssh"]\n', { uniq: true });
  dirs.push(ctx);
  const r = await runCli(['run', path.join(ctx, 'Dockerfile')], { env: env() });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'over ssh\n');
  // Built by the remote engine's BuildKit, its session carried by a dial-stdio channel of its own.
  assert.match(r.stderr, /by BuildKit/, r.stderr);
  const hw = await runCli(['hardware'], { env: env() });
  assert.match(hw.stdout, /^Engine: Docker Engine .* at ssh:\/\/gpu-box \(DOCKER_HOST\)$/m);
});

test('a Docker context whose host is ssh:// is reached the same way', async () => {
  writeFileSync(knownHosts, hostLine);
  const name = 'gpu';
  const meta = path.join(home, '.docker', 'contexts', 'meta', createHash('sha256').update(name).digest('hex'));
  mkdirSync(meta, { recursive: true });
  writeFileSync(path.join(meta, 'meta.json'), JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: 'ssh://gpu-box', SkipTLSVerify: false } } }));
  const hw = await runCli(['hardware'], { env: env({ DOCKER_HOST: '', DOCKER_CONTEXT: name }) });
  assert.equal(hw.code, 0, hw.stderr);
  assert.match(hw.stdout, /^Engine: Docker Engine .* at ssh:\/\/gpu-box \(context "gpu", from DOCKER_CONTEXT\)$/m);
});

test('a host whose key is not in known_hosts is refused, with what to do', async () => {
  writeFileSync(knownHosts, '');
  const ctx = makeContext({}, 'CMD ["echo", "never"]\n', { uniq: true });
  dirs.push(ctx);
  const r = await runCli(['run', path.join(ctx, 'Dockerfile')], { env: env() });
  assert.equal(r.code, 125);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /ssh to gpu-box: its host key is not in known_hosts or has changed \(.*Host key verification failed.*\); connect once with `ssh gpu-box`/);
});

test('a key the host does not accept is reported as such', async () => {
  writeFileSync(knownHosts, hostLine);
  const ctx = makeContext({}, 'CMD ["echo", "never"]\n', { uniq: true });
  dirs.push(ctx);
  const r = await runCli(['run', path.join(ctx, 'Dockerfile')], { env: env({ BYTENITE_SSH_COMMAND: `ssh -F ${sshConfig} -o IdentityAgent=none -o IdentitiesOnly=yes` }) });
  assert.equal(r.code, 125, r.stderr);
  assert.match(r.stderr, /ssh to gpu-box: no key was accepted \(.*Permission denied.*\); add your key to the SSH agent/);
});

test('run -i over ssh: stdin reaches the program through the engine\'s attach, on a dial-stdio channel', async () => {
  writeFileSync(knownHosts, hostLine);
  const ctx = makeContext({}, 'CMD ["echo", "unused"]\n', { uniq: true });
  dirs.push(ctx);
  const child = spawn(process.execPath, [CLI, 'run', '-i', path.join(ctx, 'Dockerfile'), '--', 'wc', '-c'], { env: { ...process.env, ...env() }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  child.stdin!.end(Buffer.alloc(300_000, 'x'));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err);
  assert.equal(out.trim(), '300000');
});
