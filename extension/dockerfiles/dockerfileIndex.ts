/**
 * The workspace's Dockerfiles, found once with `findFiles` (which honours `files.exclude` and, with
 * `search.exclude` passed in, that too) and kept current by a file watcher.
 */
import * as vscode from 'vscode';
import { DOCKERFILE_GLOB, isDockerfileName } from './patterns';

const STALE_MS = 3000;

export class DockerfileIndex implements vscode.Disposable {
  private readonly files = new Map<string, vscode.Uri>();
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private scanning?: Promise<void>;
  private scannedAt = 0;
  readonly onDidChange = this.changed.event;

  constructor() {
    const watcher = vscode.workspace.createFileSystemWatcher(DOCKERFILE_GLOB, false, true, false);
    // A deleted folder reports only itself: watch every delete to drop the Dockerfiles that were inside.
    const deletes = vscode.workspace.createFileSystemWatcher('**/*', true, true, false);
    this.disposables.push(
      watcher, deletes,
      watcher.onDidCreate((uri) => this.add(uri)),
      deletes.onDidDelete((uri) => this.remove(uri)),
      // Edits made through VS Code (explorer, refactorings, extensions) are reported at once, without
      // waiting for the file watcher, which can lag under load.
      vscode.workspace.onDidCreateFiles(() => void this.rescan()),
      vscode.workspace.onDidDeleteFiles((e) => e.files.forEach((f) => this.remove(f))),
      vscode.workspace.onDidRenameFiles(() => void this.rescan()),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void this.rescan()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('files.exclude') || e.affectsConfiguration('search.exclude')) void this.rescan();
      }),
    );
  }

  /**
   * All Dockerfiles, sorted by path. A list older than a few seconds is refreshed first: under load the
   * file watcher was seen to miss a create (code-server 4.100), and a picker must not offer a stale list.
   */
  async list(): Promise<vscode.Uri[]> {
    if (!this.scanning || Date.now() - this.scannedAt > STALE_MS) this.scanning = this.scan();
    await this.scanning;
    return [...this.files.values()].sort((a, b) => a.path.localeCompare(b.path));
  }

  rescan(): Promise<void> {
    this.scanning = this.scan();
    return this.scanning;
  }

  private async scan(): Promise<void> {
    this.scannedAt = Date.now();
    const exclude = excludeGlob();
    const found = await vscode.workspace.findFiles(DOCKERFILE_GLOB, exclude);
    const before = [...this.files.keys()].sort().join('\n');
    this.files.clear();
    for (const uri of found) if (isDockerfileName(uri.path)) this.files.set(uri.toString(), uri);
    // Only a real change is announced: views re-read the list on it, which may rescan.
    if ([...this.files.keys()].sort().join('\n') !== before) this.changed.fire();
  }

  private add(uri: vscode.Uri): void {
    if (!isDockerfileName(uri.path) || this.files.has(uri.toString())) return;
    // A created file may sit in an excluded folder: let findFiles decide by rescanning.
    void this.rescan();
  }

  private remove(uri: vscode.Uri): void {
    const gone = uri.toString();
    let changed = false;
    for (const key of [...this.files.keys()]) {
      if (key === gone || key.startsWith(`${gone}/`)) changed = this.files.delete(key) || changed;
    }
    if (changed) this.changed.fire();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** `search.exclude` as one glob (`files.exclude` is applied by findFiles itself when exclude is not null). */
function excludeGlob(): string | undefined {
  const search = vscode.workspace.getConfiguration('search').get<Record<string, boolean>>('exclude') ?? {};
  const files = vscode.workspace.getConfiguration('files').get<Record<string, boolean>>('exclude') ?? {};
  const globs = Object.entries({ ...files, ...search }).filter(([, on]) => on === true).map(([g]) => g);
  return globs.length ? `{${globs.join(',')}}` : undefined;
}
