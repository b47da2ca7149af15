/**
 * Checking an engine host's SSH key against the user's known_hosts, as `ssh` does with
 * StrictHostKeyChecking: an agent runs unattended and cannot ask, so an unknown or changed key is refused
 * with what to do, never accepted. Plain and hashed (`|1|salt|hash`) host names, `[host]:port` for a port
 * other than 22, and `@revoked` markers are understood.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type HostKeyVerdict = { ok: true } | { ok: false; why: string };

/** The name known_hosts uses for a host and port. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function matches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return pattern.split(',').some((p) => p === name);
}

/** Verdict on `key` (the raw public key blob the server sent) for `name`, from the text of known_hosts files. */
export function checkHostKey(knownHosts: string[], name: string, key: Buffer): HostKeyVerdict {
  const blob = key.toString('base64');
  let known = false;
  for (const text of knownHosts) {
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const f = line.split(/\s+/);
      const marker = f[0].startsWith('@') ? f.shift() : undefined;
      if (f.length < 3 || !matches(f[0], name)) continue;
      if (marker === '@revoked' && f[2] === blob) return { ok: false, why: `the host key of ${name} is marked @revoked in known_hosts` };
      if (marker) continue;
      known = true;
      if (f[2] === blob) return { ok: true };
    }
  }
  return known
    ? { ok: false, why: `the host key of ${name} is not the one in known_hosts (it changed, or someone is in between): check it, then fix known_hosts` }
    : { ok: false, why: `${name} is not in known_hosts: connect once with \`ssh\` (or add its key with \`ssh-keyscan\`), then try again` };
}

/** The user's known_hosts files' text (those that exist). */
export function readKnownHosts(home = os.homedir()): string[] {
  return [path.join(home, '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'].filter(existsSync).map((f) => readFileSync(f, 'utf8'));
}
