/**
 * The Docker Engine's CPU time over a stretch of work, from /proc: dockerd, containerd and the per-container
 * shims (containerd-shim-runc-v2), each with its own time (utime + stime) and the time of the children it
 * waited for (cutime + cstime: the `runc` calls a shim makes, the `containerd-shim … start` calls containerd
 * makes). A shim lives only as long as its container, so its time is read from whoever reaps it (its parent
 * once it has daemonized: pid 1 or a subreaper, seen while the work runs) as that process's children's time.
 *
 * What it cannot separate: a shim is the subreaper of its container's processes, so the container's own
 * command is inside its shim's children's time (the caller can subtract a native run of that command); and
 * anything else that the reaper reaps meanwhile (another client's containers too) is counted.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Linux's USER_HZ: /proc counts CPU time in clock ticks of 10 ms. */
const TICK_MS = 10;

interface Stat { comm: string; ppid: number; self: number; children: number }

function stat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).split(' ');
    return {
      comm: text.slice(text.indexOf('(') + 1, close), ppid: Number(f[1]),
      self: (Number(f[11]) + Number(f[12])) * TICK_MS, children: (Number(f[13]) + Number(f[14])) * TICK_MS,
    };
  } catch {
    return undefined; // exited between the listing and the read
  }
}

function processes(): Map<number, Stat> {
  const all = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s) all.set(Number(name), s);
  }
  return all;
}

const isShim = (s: Stat) => s.comm.startsWith('containerd-shim');
const isDaemon = (s: Stat) => s.comm === 'dockerd' || s.comm === 'containerd';

/** Processes seen reaping shims (pid 1 unless a subreaper sits between): their children's time is read at every start. */
const knownReapers = new Set<number>([1]);

export interface EngineCpu {
  /**
   * Ends the measurement: engine CPU ms since `measureEngineCpu` was called; NaN the first time a shim's reaper
   * other than pid 1 is seen (its time at the start was not read: the next measurement reads it).
   */
  stop(): number;
}

/** Starts measuring; while it runs, the shims' parents are looked up every `everyMs` (so that their reaper is known). */
export function measureEngineCpu(everyMs = 200): EngineCpu {
  const start = processes();
  const daemons = [...start].filter(([, s]) => isDaemon(s)).map(([pid]) => pid);
  if (daemons.length === 0) throw new Error('no dockerd or containerd process is visible in /proc: the engine CPU cannot be read here');
  // A shim just made is for a moment the child of the `containerd-shim … start` call (itself a shim) that made it.
  const isOrphanShim = (s: Stat, all: Map<number, Stat>) => {
    const parent = all.get(s.ppid);
    return isShim(s) && !daemons.includes(s.ppid) && !(parent && isShim(parent));
  };
  const startChildren = new Map([...knownReapers].map((pid) => [pid, stat(pid)?.children ?? 0]));
  const reapers = new Set<number>();
  const look = (all: Map<number, Stat>) => {
    for (const s of all.values()) if (isOrphanShim(s, all)) reapers.add(s.ppid);
  };
  look(start);
  const timer = setInterval(() => look(processes()), everyMs);
  return {
    stop() {
      clearInterval(timer);
      const end = processes();
      look(end);
      let ms = 0;
      for (const pid of daemons) {
        const a = start.get(pid)!;
        const b = end.get(pid);
        if (!b) throw new Error(`the engine's ${a.comm} (pid ${pid}) stopped during the measurement`);
        ms += b.self + b.children - a.self - a.children;
      }
      if (reapers.size === 0) reapers.add(1); // no shim seen alive: any there was went to pid 1
      for (const pid of reapers) {
        const before = startChildren.get(pid);
        if (before === undefined) {
          knownReapers.add(pid);
          return NaN;
        }
        ms += (end.get(pid)?.children ?? before) - before;
      }
      // Shims alive at the end count their time so far; those alive at the start count only what followed.
      for (const s of end.values()) if (isOrphanShim(s, end)) ms += s.self + s.children;
      for (const s of start.values()) if (isOrphanShim(s, start)) ms -= s.self + s.children;
      return ms;
    },
  };
}

/** Fails plainly where a counted measurement could not be read (see `stop`). */
export function counted(ms: number, what: string): number {
  if (!Number.isFinite(ms)) throw new Error(`${what}: the engine's CPU time could not be read (a shim's reaper was first seen during it)`);
  return ms;
}

/** CPU time (ms) of this process's children that it has waited for so far: /proc/self/stat's cutime + cstime. */
export function ownChildrenCpuMs(): number {
  return stat(process.pid)!.children;
}
