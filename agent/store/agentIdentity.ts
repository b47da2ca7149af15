/**
 * Who this agent is: an id kept in its data folder (`agent-id`) and written on every container it makes
 * (label io.bytenite.agent), so that two agents sharing one Docker Engine never touch each other's
 * containers, and a restarted agent finds its own again.
 *
 * A data folder is owned by one live agent at a time (`agent.lock` holds its pid). A second agent started
 * on a folder in use (two `bytenite run` at once, each embedding an agent) gets an id of its own for this
 * process only and does not recover runs: those belong to the agent that holds the lock.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export interface AgentIdentity {
  id: string;
  /** True when this process owns the data folder: it may recover and clean up the journal's runs. */
  owner: boolean;
  release(): void;
}

export function claimIdentity(dataDir: string): AgentIdentity {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const idFile = path.join(dataDir, 'agent-id');
  let id: string;
  try {
    id = readFileSync(idFile, 'utf8').trim();
    if (!/^a-[a-z0-9]{8,40}$/.test(id)) throw new Error('bad id');
  } catch {
    id = `a-${randomBytes(8).toString('hex')}`;
    writeFileSync(idFile, id + '\n', { mode: 0o600 });
  }
  const lock = path.join(dataDir, 'agent.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      return { id, owner: true, release: () => rmSync(lock, { force: true }) };
    } catch {
      const holder = Number(readFileSync(lock, 'utf8').trim() || 0);
      if (holder && alive(holder)) break;
      rmSync(lock, { force: true }); // left by an agent that died without cleaning up
    }
  }
  return { id: `a-${randomBytes(8).toString('hex')}`, owner: false, release: () => {} };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
