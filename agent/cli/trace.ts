/**
 * Start-up trace for the warm-start benchmark (bench/trace/warmTrace.ts): with BYTENITE_TRACE=1 the CLI
 * writes `[trace] STEP MS` lines on stderr, MS counted from the process's start (performance.now()'s origin),
 * so Node's own start and the loading of the bundle are included. Off, it costs one environment lookup.
 */
const on = Boolean(process.env.BYTENITE_TRACE);

export function trace(step: string): void {
  if (on) process.stderr.write(`[trace] ${step} ${performance.now().toFixed(1)}\n`);
}
