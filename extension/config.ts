/** Typed getters for the `bytenite.*` settings; package.json `contributes.configuration` declares them. */
import * as vscode from 'vscode';

export interface RemoteAgentConfig {
  name: string;
  url: string;
  /** PEM file of the CA that signed a `wss://` agent's self-signed certificate. */
  caFile?: string;
}

/** Name of the built-in agent the extension starts itself. */
export const LOCAL_AGENT = 'local';

const section = () => vscode.workspace.getConfiguration('bytenite');

export const config = {
  codeLensEnabled: (): boolean => section().get<boolean>('codeLens.enabled', true),
  /** Remote agents by name and URL; their tokens are in SecretStorage, never here. */
  remoteAgents: (): RemoteAgentConfig[] =>
    (section().get<RemoteAgentConfig[]>('agents.remote', []) ?? []).filter(
      (a) => a && typeof a.name === 'string' && typeof a.url === 'string' && a.name !== LOCAL_AGENT,
    ),
  selectedAgent: (): string => section().get<string>('agents.selected', LOCAL_AGENT) || LOCAL_AGENT,
  localAgentAutoStart: (): boolean => section().get<boolean>('localAgent.autoStart', true),
  /** A Docker context for the local agent's engine; empty: the docker CLI's own rules. */
  localDockerContext: (): string | undefined => section().get<string>('localAgent.dockerContext', '')?.trim() || undefined,
  /** `bytenite agent --hot-pool N` for the local agent (0 to 64; anything else falls back to the agent's default). */
  localHotPool: (): number | undefined => {
    const n = section().get<number>('localAgent.hotPool');
    return Number.isInteger(n) && n! >= 0 && n! <= 64 ? n : undefined;
  },
  async setRemoteAgents(agents: RemoteAgentConfig[]): Promise<void> {
    await section().update('agents.remote', agents, vscode.ConfigurationTarget.Global);
  },
  async setSelectedAgent(name: string): Promise<void> {
    await section().update('agents.selected', name, vscode.ConfigurationTarget.Global);
  },
};

/** True when a configuration change touches one of ours. */
export const affects = (e: vscode.ConfigurationChangeEvent, key: string) => e.affectsConfiguration(`bytenite.${key}`);
