/**
 * How each Dockerfile is built, as the user chose it (remembered per Dockerfile in the workspace state, as
 * hardware is): the build context folder, the target stage, the ports to forward and the volumes to mount. Build secrets are not here: they live in
 * SecretStorage (extension/secrets.ts).
 */
import type * as vscode from 'vscode';

const KEY = 'bytenite.buildChoices';

export interface BuildChoice {
  /** The context folder, absolute; absent: the Dockerfile's own folder. */
  contextDir?: string;
  /** The stage to build up to; '' chosen as "the last stage" (no --target), absent when never asked. */
  target?: string;
  /**
   * The ports forwarded while a run of it goes, as `-p` writes them (`8000`, `8080:80`); [] chosen as none,
   * absent when never asked.
   */
  ports?: string[];
  /** The named volumes mounted, as `-v` writes them (`cache:/data`, `m:/models:ro`); [] chosen as none, absent when never asked. */
  volumes?: string[];
}

export class BuildChoices {
  constructor(private readonly state: vscode.Memento) {}

  private all(): Record<string, BuildChoice> {
    return this.state.get<Record<string, BuildChoice>>(KEY, {});
  }

  get(dockerfile: vscode.Uri): BuildChoice {
    return this.all()[dockerfile.toString()] ?? {};
  }

  async update(dockerfile: vscode.Uri, change: Partial<BuildChoice>): Promise<void> {
    const key = dockerfile.toString();
    await this.state.update(KEY, { ...this.all(), [key]: { ...this.all()[key], ...change } });
  }
}
