/**
 * The CLI's end of an interactive run's stdin (`run -i`, `run -it`): this process's stdin goes to the
 * run's program over the `/stdin/RUN` socket; with a terminal, this one is put in raw mode (Ctrl-C is a
 * byte for the program, not a signal for the CLI) and its size follows the window. The program's output
 * comes as the run's log events, printed by the reporter. Piped input ends with `{"eof":true}`.
 */
import type WebSocket from 'ws';
import type { AgentClient } from '../client/agentClient';
import { TunnelRefused } from '../client/openTunnel';

/** Bytes sent but not yet on the wire past which this process's stdin is not read. */
const HIGH_WATER = 1024 * 1024;

export interface LinkOptions {
  tty: boolean;
  /** The socket closed without the run ending: said once, in words for the user. */
  onLost(message: string): void;
}

export class TerminalLink {
  private closed = false;
  private readonly raw: boolean;
  private readonly stdin = process.stdin;

  private constructor(private readonly ws: WebSocket, runId: string, private readonly opts: LinkOptions) {
    const o = opts;
    this.raw = o.tty && Boolean(this.stdin.isTTY);
    if (this.raw) this.stdin.setRawMode(true);
    this.stdin.on('data', this.onData);
    this.stdin.on('end', this.onEnd);
    if (this.raw) process.stdout.on('resize', this.onResize);
    this.stdin.resume();
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      if (this.closed) return;
      this.close();
      if (code !== 1000) {
        o.onLost(`lost the connection to run ${runId}'s stdin (${reason.toString() || `code ${code}`}): the run goes on, and is stopped if no client attaches to it again within its grace period`);
      }
    });
  }

  /**
   * Opens the socket once the run runs. `running` can reach the client a moment before the agent has the
   * program's stdin ready (409): asked again for a few seconds.
   */
  static async open(client: AgentClient, runId: string, o: LinkOptions): Promise<TerminalLink> {
    const size = o.tty ? { cols: process.stdout.columns, rows: process.stdout.rows } : undefined;
    for (let i = 0; ; i++) {
      try {
        return new TerminalLink(await client.stdin(runId, size), runId, o);
      } catch (err) {
        if (!(err instanceof TunnelRefused) || err.status !== 409 || i >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Gives the terminal back as it was (cooked), stops reading stdin, closes the socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.raw) this.stdin.setRawMode(false);
    this.stdin.off('data', this.onData);
    this.stdin.off('end', this.onEnd);
    process.stdout.off('resize', this.onResize);
    this.stdin.pause();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }

  private readonly onData = (chunk: Buffer) => {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(chunk, { binary: true }, () => {
      if (this.ws.bufferedAmount < HIGH_WATER / 4 && this.stdin.isPaused() && !this.closed) this.stdin.resume();
    });
    if (this.ws.bufferedAmount > HIGH_WATER) this.stdin.pause();
  };

  private readonly onEnd = () => {
    // A terminal's end is the terminal going away (closed, hung up), not end of input: with -t, Ctrl-D is a
    // byte for the program. Sending EOF would close the program's stdin for whoever attaches next.
    if (this.opts.tty) return this.close();
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify({ eof: true }));
  };

  private readonly onResize = () => {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify({ resize: [process.stdout.columns, process.stdout.rows] }));
  };
}
