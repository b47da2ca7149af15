/**
 * The request journal of one endpoint: what each request was and how long each part took (held, the
 * instance's wake when it woke one, first byte, total), never its headers, query or body. The latest
 * ones are kept in memory for `endpoint.requests`; all are appended to a file in the data folder that is
 * rotated at a size bound (one older file kept), so the journal stays bounded like run journals.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import type { RequestRecord } from '../protocol';
import { localDay } from './endpointCost';

export interface RequestJournalOptions {
  /** Records kept in memory (the ones `endpoint logs` shows). */
  keep: number;
  /** Bytes of the journal file before it is rotated. */
  fileBytes: number;
}

export const DEFAULT_REQUEST_JOURNAL: RequestJournalOptions = { keep: 1000, fileBytes: 4 * 1024 * 1024 };

type Listener = (r: RequestRecord) => void;

export class RequestJournal {
  private readonly recent: RequestRecord[] = [];
  private readonly listeners = new Set<Listener>();
  /** Lines added in this turn of the event loop, written by flush(). */
  private readonly unwritten: string[] = [];
  private seq = 0;
  private bytes = 0;
  /** Requests since the agent started (the summary's count). */
  served = 0;
  /** Requests of the agent's local day, counted back from the files after a restart (as far as they reach). */
  private day = { day: localDay(new Date()), count: 0 };

  constructor(private readonly file: string, private readonly opts: RequestJournalOptions = DEFAULT_REQUEST_JOURNAL) {
    mkdirSync(path.dirname(file), { recursive: true });
    // The tail of the file comes back after a restart, and numbering continues from it.
    for (const f of [`${file}.1`, file]) {
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        if (!line) continue;
        try {
          const r = JSON.parse(line) as RequestRecord;
          this.remember(r);
          this.countDay(new Date(r.time));
          this.seq = Math.max(this.seq, r.seq);
        } catch { /* a line cut by a crash */ }
      }
    }
    this.bytes = existsSync(file) ? statSync(file).size : 0;
  }

  /** Numbers a finished request, keeps it, appends it to the file and tells the followers. */
  add(r: Omit<RequestRecord, 'seq'>): RequestRecord {
    const rec: RequestRecord = { seq: ++this.seq, ...r };
    this.served++;
    this.countDay(new Date(rec.time));
    this.remember(rec);
    this.unwritten.push(JSON.stringify(rec) + '\n');
    // The requests that end in one turn of the event loop go to the file in one write, right after it: under
    // load that is dozens, each an open, write and close of its own before (6% of the agent's time).
    if (this.unwritten.length === 1) setImmediate(() => this.flush());
    for (const l of this.listeners) l(rec);
    return rec;
  }

  /** Appends the records not yet in the file (also called as the agent stops). */
  flush(): void {
    if (this.unwritten.length === 0) return;
    const text = this.unwritten.join('');
    this.unwritten.length = 0;
    try {
      if (this.bytes + text.length > this.opts.fileBytes && this.bytes > 0) {
        renameSync(this.file, `${this.file}.1`);
        this.bytes = 0;
      }
      appendFileSync(this.file, text, { mode: 0o600 });
      this.bytes += text.length;
    } catch { /* a full disk loses the file copy, not the request */ }
  }

  /** Requests that arrived on the agent's local day `now` falls on. */
  today(now = new Date()): number {
    return this.day.day === localDay(now) ? this.day.count : 0;
  }

  private countDay(at: Date): void {
    const d = localDay(at);
    if (d === this.day.day) this.day.count++;
    else if (d > this.day.day) this.day = { day: d, count: 1 };
  }

  /** The latest `limit` records after `afterSeq`, oldest first. */
  list(afterSeq: number, limit: number): RequestRecord[] {
    return this.recent.slice(-this.opts.keep).filter((r) => r.seq > afterSeq).slice(-limit);
  }

  follow(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private remember(r: RequestRecord): void {
    this.recent.push(r);
    // Trimmed once it holds twice what is kept, not at every request: one copy per `keep` requests.
    if (this.recent.length >= 2 * this.opts.keep) this.recent.splice(0, this.recent.length - this.opts.keep);
  }
}
