/**
 * What a ByteNite terminal talks to: a program's terminal somewhere on an agent (an exec in a running run,
 * or an interactive run's own program). The Pseudoterminal (shellPty.ts) knows only this shape.
 */
export interface ShellChannel {
  /** Keystrokes, as VS Code hands them over (Ctrl-C is the byte 0x03). */
  write(data: string): void;
  resize(cols: number, rows: number): void;
  /** The user closed the terminal: end the session (the program gets a hang-up). */
  close(): void;
}

export interface ShellSink {
  /** The program's terminal output. */
  output(text: string): void;
  /**
   * The session is over: `code` is the program's exit code where it is known; `message` says why in words
   * when it ended some other way (the run ended, the connection was lost).
   */
  exit(code: number | undefined, message?: string): void;
}

/** The shell a ByteNite terminal starts: bash where the image has it, else sh (busybox, alpine). */
export const SHELL_COMMAND = ['sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi'];
