/**
 * The agent's journal: every run's record and every one of its events, kept in the data folder so that a
 * restarted agent can list past runs, replay their events and pick up the ones still running.
 *
 * Layout, one folder per run (beside its outputs.tar): `runs/<id>/run.json` (the record, rewritten
 * atomically when the run ends) and `runs/<id>/events.jsonl` (one event a line, appended with a write(2)
 * per event, so a SIGKILLed agent loses nothing it had emitted). Plain files rather than SQLite: no native
 * addon to ship in the extension's package, and a torn last line is the worst a crash can leave.
 *
 * Caps: a run's events rotate to `events.1.jsonl` when the current file passes `segmentBytes` (so one run
 * keeps at most about twice that: the oldest events of a very chatty run go first), and the whole journal
 * is pruned oldest finished run first once it passes `maxBytes`.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { FinalEvent, RunEvent, RunSpec, isFinal } from '../protocol';
import type { ByteCursor } from '../engine/dockerStream';

/**
 * Where a container's log stream stood, so that a restarted agent continues exactly there. The Docker
 * engine streams through attach and counts the bytes of each stream it delivered; Swarm reads task logs,
 * whose cursor is the engine's timestamp of the last frame taken and how many frames had it.
 */
export type LogCursor = ByteCursor | TimeCursor;
export type { ByteCursor };

export interface TimeCursor {
  time: string;
  count: number;
}

export const isTimeCursor = (c: LogCursor | undefined): c is TimeCursor => c !== undefined && 'time' in c;

export interface JournalEntry {
  seq: number;
  event: RunEvent;
  /** When the agent recorded it (ms since the epoch). */
  at: number;
  cursor?: LogCursor;
}

export interface RunRecord {
  id: string;
  agentId: string;
  /** Whose run it is (see agent/auth/tokens.ts); absent means the default tenant. */
  tenant?: string;
  createdAt: string;
  spec: RunSpec;
  warmImage?: string;
  /** Set once the run has ended. */
  lastSeq?: number;
  final?: FinalEvent;
}

export interface JournalOptions {
  /** Bytes of the whole journal (all runs' events and records) before the oldest finished runs are pruned. */
  maxBytes: number;
  /** Bytes of one run's current events file before it rotates. */
  segmentBytes: number;
}

export const DEFAULT_JOURNAL: JournalOptions = { maxBytes: 512 * 1024 * 1024, segmentBytes: 32 * 1024 * 1024 };

const REDACTED = '[redacted]';

/** The events of one run, on disk. */
export class RunEventFile {
  private fd: number;
  private bytes: number;
  /** Events a failed write could not store: kept here so that replay still has them. */
  private readonly unwritten: JournalEntry[] = [];

  constructor(private readonly dir: string, private readonly segmentBytes: number) {
    const file = path.join(dir, 'events.jsonl');
    this.fd = openSync(file, 'a', 0o600);
    this.bytes = statSync(file).size;
  }

  append(entry: JournalEntry): void {
    const line = JSON.stringify(entry) + '\n';
    try {
      if (this.bytes > 0 && this.bytes + line.length > this.segmentBytes) this.rotate();
      this.bytes += writeSync(this.fd, line);
    } catch {
      this.unwritten.push(entry);
    }
  }

  /** Every stored entry with seq > afterSeq, oldest first. */
  read(afterSeq: number): JournalEntry[] {
    const out = readEntries(this.dir).filter((e) => e.seq > afterSeq);
    for (const e of this.unwritten) if (e.seq > afterSeq) out.push(e);
    return out;
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }

  private rotate(): void {
    closeSync(this.fd);
    renameSync(path.join(this.dir, 'events.jsonl'), path.join(this.dir, 'events.1.jsonl'));
    this.fd = openSync(path.join(this.dir, 'events.jsonl'), 'a', 0o600);
    this.bytes = 0;
  }
}

/** Reads a run's events, older segment first; a torn last line (a crash mid-write) is skipped. */
export function readEntries(dir: string): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const name of ['events.1.jsonl', 'events.jsonl']) {
    let text: string;
    try {
      text = readFileSync(path.join(dir, name), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as JournalEntry;
        if (typeof e.seq === 'number' && e.event && (out.length === 0 || e.seq > out[out.length - 1].seq)) out.push(e);
      } catch {
        /* torn line */
      }
    }
  }
  return out;
}

export class RunJournal {
  constructor(private readonly runsDir: string, readonly opts: JournalOptions = DEFAULT_JOURNAL) {}

  dirOf(runId: string): string {
    return path.join(this.runsDir, runId);
  }

  /** Records a new run and opens its events file. Secret env values never reach the disk. */
  open(record: RunRecord): RunEventFile {
    const dir = this.dirOf(record.id);
    writeAtomic(path.join(dir, 'run.json'), JSON.stringify(redact(record)), true);
    return new RunEventFile(dir, this.opts.segmentBytes);
  }

  /** Reopens the events file of a run found in the journal (to keep appending after a restart). */
  reopen(runId: string): RunEventFile {
    return new RunEventFile(this.dirOf(runId), this.opts.segmentBytes);
  }

  /** Rewrites the record with its final event: listing past runs then needs no event read. */
  finish(record: RunRecord): void {
    try {
      writeAtomic(path.join(this.dirOf(record.id), 'run.json'), JSON.stringify(redact(record)), false);
    } catch {
      /* the final event is in events.jsonl too; load() finds it there */
    }
  }

  /** Every run in the journal, oldest first; unfinished ones come with their entries. */
  load(): Array<{ record: RunRecord; entries?: JournalEntry[] }> {
    const out: Array<{ record: RunRecord; entries?: JournalEntry[] }> = [];
    let names: string[];
    try {
      names = readdirSync(this.runsDir);
    } catch {
      return out;
    }
    for (const name of names) {
      let record: RunRecord;
      try {
        record = JSON.parse(readFileSync(path.join(this.runsDir, name, 'run.json'), 'utf8'));
      } catch {
        continue; // not a journaled run (or a record torn before its first write finished)
      }
      if (record.final) {
        out.push({ record });
        continue;
      }
      const entries = readEntries(this.dirOf(record.id));
      const last = entries.at(-1);
      if (last && isFinal(last.event)) {
        // Ended, but the agent died before rewriting the record.
        record.final = last.event;
        record.lastSeq = last.seq;
        this.finish(record);
        out.push({ record });
      } else {
        out.push({ record, entries });
      }
    }
    return out.sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt));
  }

  /**
   * Deletes the oldest finished runs (records, events and outputs) until the journal fits in maxBytes.
   * Returns the ids removed. `live` runs are never touched.
   */
  prune(finishedOldestFirst: string[], live: ReadonlySet<string>): string[] {
    const sizes = new Map<string, number>();
    let total = 0;
    let names: string[] = [];
    try {
      names = readdirSync(this.runsDir);
    } catch {
      return [];
    }
    for (const name of names) {
      const n = dirBytes(path.join(this.runsDir, name));
      sizes.set(name, n);
      total += n;
    }
    const removed: string[] = [];
    for (const id of finishedOldestFirst) {
      if (total <= this.opts.maxBytes) break;
      if (live.has(id) || !sizes.has(id)) continue;
      rmSync(this.dirOf(id), { recursive: true, force: true });
      total -= sizes.get(id)!;
      removed.push(id);
    }
    return removed;
  }
}

function redact(record: RunRecord): RunRecord {
  const secret = new Set(record.spec.secretEnv ?? []);
  if (secret.size === 0) return record;
  const env = Object.fromEntries(Object.entries(record.spec.env ?? {}).map(([k, v]) => [k, secret.has(k) ? REDACTED : v]));
  return { ...record, spec: { ...record.spec, env } };
}

function writeAtomic(file: string, text: string, mkdir: boolean): void {
  if (mkdir) mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

function dirBytes(dir: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      try {
        n += statSync(path.join(dir, f)).size;
      } catch {
        /* vanished */
      }
    }
  } catch {
    /* not a folder */
  }
  return n;
}
