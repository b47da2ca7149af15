/**
 * The hardware each Dockerfile runs on: a choice made in the picker (remembered per Dockerfile in the
 * workspace state) wins over the Dockerfile's `bytenite.*` labels, which win over the default.
 */
import * as vscode from 'vscode';
import type { HardwareRequest } from '../../agent/protocol';
import { applyLabels, hasHardwareLabels, readHardwareLabels } from '../dockerfiles/labels';
import { DEFAULT_HARDWARE } from './pricing';

const KEY = 'bytenite.hardwareChoices';
// Kept beside the hardware, not in it: the hardware map holds protocol `HardwareRequest`s as sent.
const PARALLEL_KEY = 'bytenite.parallelChoices';

export class HardwareChoices {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly state: vscode.Memento) {}

  private all(): Record<string, HardwareRequest> {
    return this.state.get<Record<string, HardwareRequest>>(KEY, {});
  }

  chosen(dockerfile: vscode.Uri): HardwareRequest | undefined {
    return this.all()[dockerfile.toString()];
  }

  /** What a run of this Dockerfile asks for now, and where that came from. */
  resolve(dockerfile: vscode.Uri, text: string): {
    hardware: HardwareRequest; source: 'choice' | 'labels' | 'default'; problems: string[];
  } {
    const labels = readHardwareLabels(text);
    const chosen = this.chosen(dockerfile);
    if (chosen) return { hardware: chosen, source: 'choice', problems: labels.problems };
    return {
      hardware: applyLabels(DEFAULT_HARDWARE, labels), source: hasHardwareLabels(labels) ? 'labels' : 'default', problems: labels.problems,
    };
  }

  /** How many parallel tasks (fan-out) the user chose for this Dockerfile; 1 when none. */
  parallel(dockerfile: vscode.Uri): number {
    return this.state.get<Record<string, number>>(PARALLEL_KEY, {})[dockerfile.toString()] ?? 1;
  }

  async remember(dockerfile: vscode.Uri, hw: HardwareRequest, parallel?: number): Promise<void> {
    if (parallel !== undefined) await this.rememberParallel(dockerfile, parallel);
    await this.state.update(KEY, { ...this.all(), [dockerfile.toString()]: hw });
    this.changed.fire(dockerfile);
  }

  async rememberParallel(dockerfile: vscode.Uri, parallel: number): Promise<void> {
    await this.state.update(PARALLEL_KEY, { ...this.state.get<Record<string, number>>(PARALLEL_KEY, {}), [dockerfile.toString()]: parallel });
  }

  dispose(): void {
    this.changed.dispose();
  }
}
