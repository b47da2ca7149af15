/** The typed handle on `acquireVsCodeApi()`, which VS Code allows to be called once per webview. */

export interface VsCodeApi<Out, State> {
  postMessage(message: Out): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi(): VsCodeApi<unknown, unknown>;

let api: VsCodeApi<unknown, unknown> | undefined;

export function vscodeApi<Out, State>(): VsCodeApi<Out, State> {
  api ??= acquireVsCodeApi();
  return api as VsCodeApi<Out, State>;
}
