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
