/**
 * An engine over SSH reached the way the docker CLI reaches one: the user's own `ssh` binary runs
 * `docker system dial-stdio` on the remote host, and its stdin and stdout are the connection to that
 * host's engine. Going through `ssh` rather than an SSH library means `~/.ssh/config` (Host aliases,
 * ProxyJump, IdentityFile, ControlMaster), the user's agent, hardware keys and known_hosts all work as
 * they do in the user's terminal. `BYTENITE_SSH_COMMAND` replaces `ssh` and its options, as
 * GIT_SSH_COMMAND does for git (e.g. `ssh -F /path/to/config`).
 * BatchMode: the agent runs unattended and must never wait on a password or host-key prompt; ssh then
 * refuses an unknown host key instead of asking, which is the check we want.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { Duplex } from 'node:stream';

export interface SshTarget {
  host: string;
  user?: string;
  port?: number;
}

/** `ssh://[user@]host[:port]` as the docker CLI accepts it (no path: the remote engine is its default). */
export function parseSshUrl(url: string): SshTarget {
  const u = new URL(url);
  if (u.protocol !== 'ssh:') throw new Error(`${url}: not an ssh:// address`);
  if (u.pathname && u.pathname !== '/') throw new Error(`${url}: an ssh:// engine address takes no path`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    user: u.username ? decodeURIComponent(u.username) : undefined,
    port: u.port ? Number(u.port) : undefined,
  };
}

/** The command line: `ssh -o BatchMode=yes -o ConnectTimeout=30 -T [-l U] [-p P] -- HOST docker system dial-stdio`. */
export function sshCommand(t: SshTarget, env: NodeJS.ProcessEnv = process.env): { file: string; args: string[] } {
  // Whitespace-split like GIT_SSH_COMMAND's simple case; quoting is not interpreted.
  const base = (env.BYTENITE_SSH_COMMAND?.trim() || 'ssh').split(/\s+/);
  const args = [...base.slice(1), '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30', '-T'];
  if (t.user) args.push('-l', t.user);
  if (t.port) args.push('-p', String(t.port));
  args.push('--', t.host, 'docker', 'system', 'dial-stdio');
  return { file: base[0], args };
}

/** ssh's own words on why it failed, turned into what to do. */
export function explainSshFailure(t: SshTarget, stderr: string, code: number | null): string {
  const where = `${t.user ? `${t.user}@` : ''}${t.host}${t.port ? `:${t.port}` : ''}`;
  const said = stderr.trim().split('\n').filter((l) => l && !/^Warning: Permanently added/.test(l)).slice(-3).join('; ');
  if (/Host key verification failed|No .* host key is known|REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(stderr)) {
    return `ssh to ${where}: its host key is not in known_hosts or has changed (${said}); connect once with \`ssh ${where}\` to check and accept it, then try again`;
  }
  if (/Permission denied/i.test(stderr)) {
    return `ssh to ${where}: no key was accepted (${said}); add your key to the SSH agent (\`ssh-add\`) or name it in ~/.ssh/config`;
  }
  if (/docker: (command )?not found|command not found/i.test(stderr)) {
    return `ssh to ${where} worked, but the docker CLI is not installed there (\`docker system dial-stdio\` is how the engine is reached)`;
  }
  if (/ENOENT/.test(stderr)) return `cannot run ssh: ${said}; install OpenSSH's client or set BYTENITE_SSH_COMMAND`;
  return `ssh to ${where} failed (exit ${code ?? 'signal'}): ${said || 'no message'}`;
}

/** One `dial-stdio` connection: a Duplex over the ssh process's stdout and stdin, failing with ssh's reason. */
export function dialSsh(t: SshTarget, env: NodeJS.ProcessEnv = process.env): Duplex {
  const { file, args } = sshCommand(t, env);
  let child: ChildProcess;
  let stderr = '';
  let gotData = false;
  const socket = new Duplex({
    read() {
      child.stdout?.resume();
    },
    write(chunk, _enc, cb) {
      if (!child.stdin || child.stdin.destroyed) return cb(new Error('ssh connection closed'));
      child.stdin.write(chunk, cb);
    },
    final(cb) {
      child.stdin?.end();
      cb();
    },
    destroy(err, cb) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      cb(err);
    },
  });
  child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  child.on('error', (err) => socket.destroy(new Error(explainSshFailure(t, `${err.message}`, null))));
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString('utf8');
  });
  child.stdout!.on('data', (d: Buffer) => {
    gotData = true;
    if (!socket.push(d)) child.stdout!.pause();
  });
  let stdoutEnded = false;
  child.stdout!.on('end', () => {
    stdoutEnded = true;
    // Before any answer, the end may be ssh giving up: its exit status (just after) tells which.
    if (gotData) socket.push(null);
  });
  child.stdin!.on('error', () => { /* the process is gone: its exit says why */ });
  child.on('exit', (code) => {
    // ssh fails before the engine ever answers: that is a connection error with ssh's reason.
    if (!gotData && code !== 0) socket.destroy(new Error(explainSshFailure(t, stderr, code)));
    else if (!gotData && stdoutEnded) socket.push(null);
  });
  // Node's HTTP client calls these on its sockets; a pipe has nothing to set.
  const s = socket as Duplex & Record<string, unknown>;
  for (const m of ['setTimeout', 'setNoDelay', 'setKeepAlive']) s[m] = () => socket;
  // A keep-alive agent unrefs the connections it keeps idle, so that they do not hold a finished CLI open:
  // here that is the ssh process and its pipes.
  const handles = () => [child, child.stdin, child.stdout, child.stderr] as Array<{ ref?: () => void; unref?: () => void } | null>;
  s.ref = () => (handles().forEach((h) => h?.ref?.()), socket);
  s.unref = () => (handles().forEach((h) => h?.unref?.()), socket);
  return socket;
}

/**
 * An http.Agent whose connections are `dial-stdio` channels. Keep-alive matters: each ssh login costs a
 * handshake (tens to hundreds of ms), so idle connections are reused for the next requests.
 */
export class SshDialAgent extends http.Agent {
  constructor(readonly ssh: SshTarget, readonly env: NodeJS.ProcessEnv = process.env, opts: http.AgentOptions = { keepAlive: true, maxFreeSockets: 4 }) {
    super(opts);
  }

  override createConnection(): Duplex {
    return dialSsh(this.ssh, this.env);
  }
}
