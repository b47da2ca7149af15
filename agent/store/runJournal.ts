/**
 * The agent's journal: every run's record and every one of its events, kept in the data folder so that a
 * restarted agent can list past runs, replay their events and pick up the ones still running.
 *
 * Layout, one folder per run: `runs/<id>/run.json` (the record, rewritten
 * atomically when the run ends) and `runs/<id>/events.jsonl` (one event a line, appended with a write(2)
 * per event, so a SIGKILLed agent loses nothing it had emitted). Plain files rather than SQLite: no native
 * addon to ship in the extension's package, and a torn last line is the worst a crash can leave.
 *
 * Caps: a run's events rotate to `events.1.jsonl` when the current file passes `segmentBytes` (so one run
 * keeps at most about twice that: the oldest events of a very chatty run go first), and the whole journal
 * is pruned oldest finished run first once it passes `maxBytes`.
 */
import {
  closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
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

/** A run's event files, older first. */
type Segment = 'events.1.jsonl' | 'events.jsonl';

/** An entry starts at about every this many bytes of a segment in its index. */
const INDEX_EVERY = 64 * 1024;
/** Bytes read from a segment at a time when reading a batch. */
const READ_CHUNK = 1024 * 1024;

/**
 * Where entries start in one segment file, sparse (about one point per INDEX_EVERY bytes), so that reading
 * after a sequence number starts near it instead of at the file's start. `to`: the offset up to which every
 * line start has been seen, so points can only be added contiguously from there.
 */
interface SegmentIndex {
  points: Array<{ seq: number; offset: number }>;
  to: number;
}

/**
 * Reads a run's events in batches of bounded size: a client that catches up with a long run is fed from
 * the disk a batch at a time, never the whole run at once. Learns where entries start while it reads.
 */
export class RunEventReader {
  protected readonly index: Record<Segment, SegmentIndex> = {
    'events.1.jsonl': { points: [], to: 0 }, 'events.jsonl': { points: [], to: 0 },
  };

  constructor(protected readonly dir: string) {}

  /** Every stored entry with seq > afterSeq, oldest first (the whole run: prefer `readAfter`). */
  read(afterSeq: number): JournalEntry[] {
    return readEntries(this.dir).filter((e) => e.seq > afterSeq);
  }

  /**
   * The entries with seq > afterSeq, oldest first, stopping once about `maxBytes` of them are read (at
   * least one entry when there is one).
   */
  readAfter(afterSeq: number, maxBytes: number): JournalEntry[] {
    const out: JournalEntry[] = [];
    const current = this.startOf('events.jsonl', afterSeq);
    // Not in the current segment's index: the entries may begin in the older one (or the index is not built yet).
    const plan: Array<[Segment, number]> = current !== undefined
      ? [['events.jsonl', current]]
      : [['events.1.jsonl', this.startOf('events.1.jsonl', afterSeq) ?? 0], ['events.jsonl', 0]];
    let bytes = 0;
    for (const [segment, from] of plan) {
      bytes = this.scan(segment, from, afterSeq, maxBytes, bytes, out);
      if (bytes >= maxBytes) break;
    }
    return out;
  }

  /** Offset of the last indexed entry with seq <= afterSeq + 1 in `segment`, if there is one. */
  private startOf(segment: Segment, afterSeq: number): number | undefined {
    const { points } = this.index[segment];
    let lo = 0;
    let hi = points.length - 1;
    let found: number | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (points[mid].seq <= afterSeq + 1) {
        found = points[mid].offset;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Reads `segment` from `from` into `out` (seq > afterSeq, ascending) until `maxBytes`; returns the bytes taken. */
  protected scan(segment: Segment, from: number, afterSeq: number, maxBytes: number, bytes: number, out: JournalEntry[]): number {
    let fd: number;
    try {
      fd = openSync(path.join(this.dir, segment), 'r');
    } catch {
      return bytes;
    }
    const idx = this.index[segment];
    // Points may be learnt only while reading on from a place every line start before which is known.
    const learning = from <= idx.to;
    try {
      let pos = from;
      let rest = Buffer.alloc(0);
      const chunk = Buffer.allocUnsafe(READ_CHUNK);
      for (;;) {
        const n = readSync(fd, chunk, 0, READ_CHUNK, pos + rest.length);
        if (n === 0) break;
        const buf = rest.length ? Buffer.concat([rest, chunk.subarray(0, n)]) : chunk.subarray(0, n);
        let start = 0;
        for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
          const lineAt = pos + start;
          const length = nl + 1 - start;
          const e = parseEntry(buf.toString('utf8', start, nl));
          start = nl + 1;
          if (!e) continue;
          if (learning && lineAt >= idx.to) {
            const last = idx.points.at(-1);
            if (!last || lineAt - last.offset >= INDEX_EVERY) idx.points.push({ seq: e.seq, offset: lineAt });
            idx.to = pos + start;
          }
          if (e.seq <= afterSeq || (out.length && e.seq <= out[out.length - 1].seq)) continue;
          out.push(e);
          bytes += length;
          if (bytes >= maxBytes) return bytes;
        }
        pos += start;
        rest = Buffer.from(buf.subarray(start));
        if (rest.length > 0 && n < READ_CHUNK) break; // a torn last line
      }
    } finally {
      closeSync(fd);
    }
    return bytes;
  }
}

/** JSON.stringify(entry) + '\n', around the event's JSON made already (keys in the same order). */
function entryLine(entry: JournalEntry, eventJson: string): string {
  const cursor = entry.cursor === undefined ? '' : `,"cursor":${JSON.stringify(entry.cursor)}`;
  return `{"seq":${entry.seq},"event":${eventJson},"at":${entry.at}${cursor}}\n`;
}

function parseEntry(line: string): JournalEntry | undefined {
  if (!line) return undefined;
  try {
    const e = JSON.parse(line) as JournalEntry;
    return typeof e.seq === 'number' && e.event ? e : undefined;
  } catch {
    return undefined; // torn line
  }
}

/** The events of one run, on disk. */
export class RunEventFile extends RunEventReader {
  private fd: number;
  private bytes: number;
  /** Events a failed write could not store: kept here so that replay still has them. */
  private readonly unwritten: JournalEntry[] = [];
  /** Readers that still need the events after their `seq` (clients catching up): see `hold`. */
  private readonly holds = new Set<{ seq: number }>();
  /** The seq of the current segment's first event (read from the file when it was reopened). */
  private firstSeq?: number;

  constructor(dir: string, private readonly segmentBytes: number) {
    super(dir);
    const file = path.join(dir, 'events.jsonl');
    this.fd = openSync(file, 'a', 0o600);
    this.bytes = statSync(file).size;
  }

  append(entry: JournalEntry, eventJson?: string): void {
    const line = eventJson === undefined ? JSON.stringify(entry) + '\n' : entryLine(entry, eventJson);
    try {
      if (this.bytes > 0 && this.bytes + line.length > this.segmentBytes && !this.olderNeeded()) this.rotate();
      const at = this.bytes;
      if (at === 0) this.firstSeq = entry.seq;
      this.bytes += writeSync(this.fd, line);
      const idx = this.index['events.jsonl'];
      if (idx.to === at) {
        const last = idx.points.at(-1);
        if (!last || at - last.offset >= INDEX_EVERY) idx.points.push({ seq: entry.seq, offset: at });
        idx.to = this.bytes;
      }
    } catch {
      this.unwritten.push(entry);
    }
  }

  /**
   * Keeps the events after `holder.seq` (which the holder moves on as it reads) from being rotated away:
   * a client that is behind reads them from here, so the older segment stays until no holder needs it.
   * The run's events then pass the rotation size for a while. Returns the release.
   */
  hold(holder: { seq: number }): () => void {
    this.holds.add(holder);
    return () => this.holds.delete(holder);
  }

  /** Whether a holder still needs an event of the older segment, which a rotation would delete. */
  private olderNeeded(): boolean {
    if (this.holds.size === 0) return false;
    if (this.firstSeq === undefined) {
      const first: JournalEntry[] = [];
      this.scan('events.jsonl', 0, -1, 1, 0, first);
      this.firstSeq = first[0]?.seq ?? 0;
    }
    for (const h of this.holds) if (h.seq + 1 < this.firstSeq) return true;
    return false;
  }

  /** Every stored entry with seq > afterSeq, oldest first. */
  override read(afterSeq: number): JournalEntry[] {
    const out = super.read(afterSeq);
    for (const e of this.unwritten) if (e.seq > afterSeq) out.push(e);
    return out;
  }

  override readAfter(afterSeq: number, maxBytes: number): JournalEntry[] {
    // Events that could not be written are interleaved with the stored ones: the whole read places them.
    if (this.unwritten.length) return this.read(afterSeq).slice(0, Math.max(1, Math.floor(maxBytes / 1024)));
    return super.readAfter(afterSeq, maxBytes);
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
    this.index['events.1.jsonl'] = this.index['events.jsonl'];
    this.index['events.jsonl'] = { points: [], to: 0 };
  }
}

/** A finished run's events, to replay them: nothing is appended any more. */
export class PastRunEvents extends RunEventReader {
  append(): void {}
  close(): void {}
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

  /**
   * Keeps a run's outcome while its container is being cleaned up: the final event goes out only once
   * the container is gone, and an agent killed in between still knows how the run ended.
   */
  settle(runId: string, final: FinalEvent): void {
    try {
      writeAtomic(path.join(this.dirOf(runId), 'outcome.json'), JSON.stringify(final), false);
    } catch {
      /* without it, a restart in the cleanup window reports the run as lost, as before */
    }
  }

  /** The outcome kept by settle(), if the run got that far. */
  settled(runId: string): FinalEvent | undefined {
    try {
      return JSON.parse(readFileSync(path.join(this.dirOf(runId), 'outcome.json'), 'utf8')) as FinalEvent;
    } catch {
      return undefined;
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

  /** Bytes the journal holds now, and its cap. */
  usage(): { usedBytes: number; budgetBytes: number } {
    let usedBytes = 0;
    try {
      for (const name of readdirSync(this.runsDir)) usedBytes += dirBytes(path.join(this.runsDir, name));
    } catch {
      /* no journal yet */
    }
    return { usedBytes, budgetBytes: this.opts.maxBytes };
  }

  /**
   * Deletes the oldest finished runs (records and events; outputs live in the output store) until the
   * journal fits in maxBytes.
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
