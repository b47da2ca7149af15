/**
 * The VS Code side of a ByteNite terminal: a Pseudoterminal whose bytes go to a program's terminal on an
 * agent (a ShellChannel). Opened at VS Code's size for it, resized when VS Code resizes it; keystrokes pass
 * through as they are (Ctrl-C is a byte for the program). The program's exit closes the terminal with its
 * exit code; closing the terminal ends the session. A session that ends without an exit code (the run
 * ended, the connection dropped, the agent refused) says why and waits for a key, as VS Code's tasks do.
 */
import * as vscode from 'vscode';
import type { ShellChannel, ShellSink } from './shellChannel';

/** How much of the output is kept for `transcript` (tests read it; nothing else does). */
const TRANSCRIPT_MAX = 64 * 1024;

export type Connect = (size: { cols?: number; rows?: number }, sink: ShellSink, pty: ShellPty) => Promise<ShellChannel>;

export class ShellPty implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  private readonly nameEmitter = new vscode.EventEmitter<string>();
  private readonly endedEmitter = new vscode.EventEmitter<number | undefined>();
  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;
  readonly onDidChangeName = this.nameEmitter.event;
  /** The session is over (with the exit code where there is one), whether or not the terminal stays. */
  readonly onDidEnd = this.endedEmitter.event;
  private channel?: ShellChannel;
  /** Keystrokes typed while the session was still opening. */
  private queued: string[] = [];
  private _transcript = '';
  private _size?: { cols: number; rows: number };
  private over = false;
  /** Waiting for a key after a session that ended in words rather than an exit code. */
  private waitingForKey = false;
  exitCode?: number;

  constructor(private readonly connect: Connect, private readonly onProblem: (message: string) => void = () => {}) {}

  /** The output so far (the last 64 KiB). */
  get transcript(): string {
    return this._transcript;
  }

  /** The size VS Code gave the terminal last. */
  get size(): { cols: number; rows: number } | undefined {
    return this._size;
  }

  get ended(): boolean {
    return this.over;
  }

  rename(name: string): void {
    this.nameEmitter.fire(name);
  }

  /** A line of ByteNite's own (not the program's), dimmed so it is not taken for output. */
  say(line: string): void {
    this.print(`\x1b[2m${line}\x1b[0m\r\n`);
  }

  open(initial: vscode.TerminalDimensions | undefined): void {
    if (initial) this._size = { cols: initial.columns, rows: initial.rows };
    const sink: ShellSink = {
      output: (text) => this.print(text),
      exit: (code, message) => this.end(code, message),
    };
    const asked = this._size;
    this.connect({ cols: asked?.cols, rows: asked?.rows }, sink, this).then((channel) => {
      if (this.over) return channel.close();
      this.channel = channel;
      // VS Code may have resized the terminal while the session was opening.
      if (this._size && (this._size.cols !== asked?.cols || this._size.rows !== asked.rows)) channel.resize(this._size.cols, this._size.rows);
      for (const q of this.queued) channel.write(q);
      this.queued = [];
    }, (err: Error) => {
      this.onProblem(err.message);
      this.end(undefined, err.message);
    });
  }

  handleInput(data: string): void {
    if (this.waitingForKey) return this.closeEmitter.fire();
    if (this.over) return;
    if (this.channel) this.channel.write(data);
    else this.queued.push(data);
  }

  setDimensions(d: vscode.TerminalDimensions): void {
    this._size = { cols: d.columns, rows: d.rows };
    if (!this.channel || this.over) return;
    this.channel.resize(d.columns, d.rows);
  }

  /** The user closed the terminal (or the extension is going): end the session. */
  close(): void {
    const wasOver = this.over;
    this.over = true;
    this.channel?.close();
    if (!wasOver) this.endedEmitter.fire(undefined);
    this.dispose();
  }

  private end(code: number | undefined, message?: string): void {
    if (this.over) return;
    this.over = true;
    this.exitCode = code;
    this.endedEmitter.fire(code);
    if (code !== undefined && message === undefined) {
      this.closeEmitter.fire(code);
      return;
    }
    this.print(`\r\n\x1b[2m${message ?? `exited with code ${code}`}. Press any key to close the terminal.\x1b[0m\r\n`);
    this.waitingForKey = true;
  }

  private print(text: string): void {
    this._transcript = (this._transcript + text).slice(-TRANSCRIPT_MAX);
    this.writeEmitter.fire(text);
  }

  private dispose(): void {
    this.writeEmitter.dispose();
    this.closeEmitter.dispose();
    this.nameEmitter.dispose();
    this.endedEmitter.dispose();
  }
}
