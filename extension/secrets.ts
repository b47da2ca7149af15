/** Agent tokens, kept in VS Code's SecretStorage (the OS keychain where there is one), keyed by agent name. */
import * as vscode from 'vscode';

const key = (agent: string) => `bytenite.agentToken.${agent}`;

export class AgentTokens {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  get(agent: string): Thenable<string | undefined> {
    return this.secrets.get(key(agent));
  }

  set(agent: string, token: string): Thenable<void> {
    return this.secrets.store(key(agent), token);
  }

  delete(agent: string): Thenable<void> {
    return this.secrets.delete(key(agent));
  }
}

/**
 * Build secrets (`RUN --mount=type=secret,id=ID`), per Dockerfile, in SecretStorage (never settings): one
 * entry per Dockerfile holding its ids and values, since SecretStorage cannot list keys. Each entry is read
 * once and then remembered until SecretStorage says it changed (here or in another window): a read is a
 * round trip to the window (in code-server, to the browser), 3-22 ms of a hot Run Again's start.
 */
export class BuildSecrets implements vscode.Disposable {
  private readonly known = new Map<string, Thenable<string | undefined>>();
  private readonly changes: vscode.Disposable;

  constructor(private readonly secrets: vscode.SecretStorage) {
    this.changes = secrets.onDidChange((e) => this.known.delete(e.key));
  }

  private key(dockerfile: vscode.Uri): string {
    return `bytenite.buildSecrets.${dockerfile.toString()}`;
  }

  /** Id to value, base64 as the run request carries them. */
  async get(dockerfile: vscode.Uri): Promise<Record<string, string>> {
    const key = this.key(dockerfile);
    let read = this.known.get(key);
    if (!read) {
      // A change that lands while this is read drops it from the map, so the next get reads again; a failed read is not kept.
      const pending = this.secrets.get(key);
      this.known.set(key, pending);
      read = pending;
      pending.then(undefined, () => this.known.get(key) === pending && this.known.delete(key));
    }
    const text = await read;
    if (!text) return {};
    try {
      return JSON.parse(text) as Record<string, string>;
    } catch {
      return {};
    }
  }

  /** Sets a secret's value; `undefined` removes it. */
  async set(dockerfile: vscode.Uri, id: string, value: string | undefined): Promise<void> {
    const all = await this.get(dockerfile);
    if (value === undefined) delete all[id];
    else all[id] = Buffer.from(value, 'utf8').toString('base64');
    const key = this.key(dockerfile);
    try {
      if (Object.keys(all).length) await this.secrets.store(key, JSON.stringify(all));
      else await this.secrets.delete(key);
    } finally {
      this.known.delete(key); // whether or not onDidChange has come yet
    }
  }

  dispose(): void {
    this.changes.dispose();
    this.known.clear();
  }
}
