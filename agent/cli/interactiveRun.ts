/**
 * `bytenite run -i` / `-it`: what the run's flags ask for (checked here, so runCommand only passes them
 * on), and the stdin link opened once the run runs and closed before its end is printed, so the terminal
 * is back in its own mode for the summary.
 */
import type { RunEvent, RunSpecInput } from '../protocol';
import { isFinal } from '../protocol/finalEvent';
import type { AgentClient } from '../client/agentClient';
import { parseDuration } from '../hardware/sizes';
import { TerminalLink } from './terminalLink';
import { UsageError } from './runCommand';

export const INTERACTIVE_HELP = `  -i, --interactive    keep the program's stdin open: piped input (ends at EOF), or typed with -t
  -t, --tty            with -i, give the program a terminal (this one goes raw: Ctrl-C goes to the
                       program; window size followed); the exit status is the program's
  --idle-timeout DURATION
                       with -i: stop the run after this long with no input or output (default 30m),
                       with a warning a minute before
`;

export interface InteractiveFlags {
  interactive?: boolean;
  tty?: boolean;
  'idle-timeout'?: string;
}

/** The run's `interactive` part, or undefined for an ordinary run; a usage error for flags that do not go together. */
export function interactiveSpec(v: InteractiveFlags, other: { parallel: number; watch: boolean; json: boolean }): RunSpecInput['interactive'] {
  if (!v.interactive) {
    if (v.tty) throw new UsageError('-t needs -i: bytenite run -it … gives the program a terminal to type into');
    if (v['idle-timeout'] !== undefined) throw new UsageError('--idle-timeout is for interactive runs (-i, -it)');
    return undefined;
  }
  if (other.parallel > 1) throw new UsageError('-i with --parallel: an interactive run has one task');
  if (other.watch) throw new UsageError('-i with --watch is not supported: a change would cut the session');
  if (v.tty && other.json) throw new UsageError('-t with --json: a terminal\'s bytes are not JSON lines; use -i alone');
  let idleTimeoutMs = 30 * 60_000;
  if (v['idle-timeout'] !== undefined) {
    try {
      idleTimeoutMs = parseDuration(v['idle-timeout']);
    } catch (err) {
      throw new UsageError(`--idle-timeout: ${(err as Error).message}`);
    }
    if (idleTimeoutMs < 1000) throw new UsageError('--idle-timeout: at least 1s');
  }
  const tty = Boolean(v.tty);
  const cols = process.stdout.columns;
  const rows = process.stdout.rows;
  return { tty, idleTimeoutMs, ...(tty && cols && rows ? { cols, rows } : {}) };
}

/** Opens the run's stdin when it starts running, and gives the terminal back when it ends (or on `close`). */
export class InteractiveLinker {
  private link?: TerminalLink;
  private opening?: Promise<void>;
  private done = false;

  constructor(
    private readonly tty: boolean, private readonly client: () => Promise<AgentClient>, private readonly say: (line: string) => void,
    /** Said once the program has this terminal's input (attach says so: its user did not just start the program). */
    private readonly opened?: () => void,
  ) {}

  /** Called with every event of the run, before it is printed. */
  event(runId: string, e: RunEvent): void {
    if (e.kind === 'running') this.open(runId);
    if (isFinal(e)) this.close();
  }

  /** Opens the stdin link now (once): on `running`, or at once for `attach` to a run already running. */
  open(runId: string): void {
    if (!this.opening && !this.done) {
      this.opening = this.client()
        .then((c) => TerminalLink.open(c, runId, { tty: this.tty, onLost: (m) => this.say(m) }))
        .then((link) => {
          if (this.done) link.close();
          else {
            this.link = link;
            this.opened?.();
          }
        }, (err) => this.say(`could not open the run's stdin: ${(err as Error).message}`));
    }
  }

  close(): void {
    this.done = true;
    this.link?.close();
    this.link = undefined;
  }
}
