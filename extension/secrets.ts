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
 * entry per Dockerfile holding its ids and values, since SecretStorage cannot list keys.
 */
export class BuildSecrets {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  private key(dockerfile: vscode.Uri): string {
    return `bytenite.buildSecrets.${dockerfile.toString()}`;
  }

  /** Id to value, base64 as the run request carries them. */
  async get(dockerfile: vscode.Uri): Promise<Record<string, string>> {
    const text = await this.secrets.get(this.key(dockerfile));
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
    if (Object.keys(all).length) await this.secrets.store(this.key(dockerfile), JSON.stringify(all));
    else await this.secrets.delete(this.key(dockerfile));
  }
}
