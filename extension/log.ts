/**
 * The one output channel (a LogOutputChannel named ByteNite), and the way errors reach the user: a short
 * message with a button that opens the channel, where the details are.
 */
import * as vscode from 'vscode';

export type Log = vscode.LogOutputChannel;

export function createLog(): Log {
  return vscode.window.createOutputChannel('ByteNite', { log: true });
}

/** Shows `message` briefly with a "Show Output" button; `detail` (an error, say) goes to the log. */
export function showError(log: Log, message: string, detail?: unknown): void {
  if (detail !== undefined) log.error(message, detail instanceof Error ? (detail.stack ?? detail.message) : String(detail));
  else log.error(message);
  void vscode.window.showErrorMessage(message, 'Show Output').then((pick) => {
    if (pick === 'Show Output') log.show(true);
  });
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
