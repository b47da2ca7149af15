/**
 * What `bytenite run --watch` waits on: a change to the build context (as `.dockerignore` leaves it) or to
 * the Dockerfile. File system events only say that something may have changed; after a quiet moment the
 * context is listed and hashed again (the hash cache makes that cheap for files that kept their size and
 * mtime) and compared with what the current run was built from. So saving an ignored file, or saving a file
 * with the same bytes, restarts nothing.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { listContext } from '../context/listContext';
import { contextDigest } from '../context/digest';

/** Editors save in bursts (a temp file, a rename, a chmod): one look after they settle. */
const SETTLE_MS = 300;

export class ContextWatcher {
  private readonly watchers: FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private baseline?: Promise<Fingerprint>;
  private closed = false;

  /**
   * `exclude`: folders (absolute) whose changes do not count, such as the outputs folder when it is inside
   * the context: a run's own results must not start the next run.
   */
  constructor(
    private readonly contextDir: string, private readonly dockerfile: string, private readonly onChange: (what: string) => void,
    private readonly exclude: string[] = [],
  ) {
    const seen = (file: string | null) => {
      if (file && this.excluded(path.relative(contextDir, file).split(path.sep).join('/'))) return;
      this.poke();
    };
    this.watchers.push(watch(contextDir, { recursive: true }, (_e, f) => seen(f && path.join(contextDir, f.toString()))));
    // A Dockerfile outside its context (`--context`): watched on its own.
    if (path.relative(contextDir, dockerfile).startsWith('..')) {
      this.watchers.push(watch(path.dirname(dockerfile), (_e, f) => f && path.join(path.dirname(dockerfile), f.toString()) === dockerfile && seen(dockerfile)));
    }
  }

  /** What the run about to start is built from: later changes are measured against it. */
  mark(): void {
    this.baseline = this.fingerprint();
    this.baseline.catch(() => {});
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
  }


  private excluded(rel: string): boolean {
    return this.exclude.some((dir) => {
      const d = path.relative(this.contextDir, dir).split(path.sep).join('/');
      return !d.startsWith('..') && (rel === d || rel.startsWith(`${d}/`));
    });
  }

  private poke(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.look(), SETTLE_MS);
  }

  private async look(): Promise<void> {
    let now: Fingerprint;
    try {
      now = await this.fingerprint();
    } catch {
      // Mid-save (a file gone between listing and reading): the next event looks again.
      return;
    }
    const before = await this.baseline?.catch(() => undefined);
    if (this.closed || now.digest === before?.digest) return;
    this.baseline = Promise.resolve(now);
    this.onChange(before ? firstDifference(before.entries, now.entries) : 'the context');
  }

  private async fingerprint(): Promise<Fingerprint> {
    const rel = path.relative(this.contextDir, this.dockerfile).split(path.sep).join('/');
    const outside = rel.startsWith('..');
    const listed = (await listContext(this.contextDir, outside ? 'Dockerfile' : rel)).filter((e) => !this.excluded(e.path));
    const entries = new Map(listed.map((e) => [e.path, e.type === 'file' ? e.sha256 : e.type === 'symlink' ? `-> ${e.linkTarget}` : `dir ${e.mode}`]));
    if (outside) entries.set(path.relative(process.cwd(), this.dockerfile), createHash('sha256').update(await readFile(this.dockerfile)).digest('hex'));
    const hash = createHash('sha256').update(contextDigest(listed, rel, {}));
    for (const [p, v] of entries) hash.update(`${p}\0${v}\n`);
    return { digest: hash.digest('hex'), entries };
  }
}

interface Fingerprint {
  digest: string;
  /** Path in the context to its content hash (or link target): to say which file changed. */
  entries: Map<string, string>;
}

/** The first path (in order) added, removed or changed between two listings. */
function firstDifference(a: Map<string, string>, b: Map<string, string>): string {
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  return paths.find((p) => a.get(p) !== b.get(p)) ?? 'the context';
}
