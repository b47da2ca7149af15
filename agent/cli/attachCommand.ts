/**
 * `bytenite attach RUN`: follow a run from the terminal, as `bytenite run` shows it: every event from the
 * first (replayed from the agent's journal), then live, until the run ends. A dropped connection to a remote
 * agent is reopened with backoff and resumed after the last event seen: no gap, no duplicate. Ctrl-C
 * leaves the run going. Exits with the run's exit code, like `bytenite run`.
 */
import { parseArgs } from 'node:util';
import type { FinalEvent } from '../protocol';
import { isFinal } from '../protocol/finalEvent';
import { AgentError } from '../client/agentClient';
import { connect, Connection } from './connect';
import { RunReporter } from './runReporter';
import { EXIT_NOT_RUN, UsageError, parseCount } from './runCommand';
import { forwardUrl, parsePublish } from './publishFlag';
import { PortForwards } from '../client/portForward';
import { InteractiveLinker } from './interactiveRun';

export const ATTACH_HELP = `Usage: bytenite attach RUN [options]

Follows run RUN (an id like r-0123abcd...): replays what it printed so far, then follows it live until it
ends, and exits with its exit code. Ctrl-C stops following; the run goes on. A run started with -i gets
this terminal's input again (with -t, in raw mode: Ctrl-C goes to the program), as docker attach does.

Options:
  --agent URL          a remote agent, ws:// or wss:// (default: the local agent's data folder)
  --token-file FILE    the agent's token (or set BYTENITE_TOKEN)
  --ca-file FILE       CA certificate (PEM) of a wss:// agent with a self-signed certificate
  --data-dir DIR       data folder of the embedded agent
  --task K             of a fan-out run (--parallel), show only task K's output (and forward to its ports)
  -p, --publish [IP:][LOCAL:]CONTAINER
                       forward a local port to a port of the run's container, as bytenite run -p does
                       (repeatable); after a reconnect new connections go through again, open ones close
  --no-stdin           of a run started with -i: follow its output only, and leave its stdin alone
  --json               print the run's protocol events on stdout, one JSON object a line
`;

/** Waits between reconnection attempts: 0.25 s doubling to 5 s, for up to about two minutes. */
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 5000];
const GIVE_UP_MS = 120_000;

export async function attachCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      agent: { type: 'string' }, 'token-file': { type: 'string' }, 'ca-file': { type: 'string' }, 'data-dir': { type: 'string' },
      task: { type: 'string' }, publish: { type: 'string', short: 'p', multiple: true }, json: { type: 'boolean', default: false },
      'no-stdin': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(ATTACH_HELP);
    return 0;
  }
  if (positionals.length !== 1 || !/^r-[a-z0-9]{6,40}$/.test(positionals[0])) {
    throw new UsageError(`give one run id, like r-0123456789abcdef${positionals.length ? ` (got ${positionals.join(' ')})` : ''}`);
  }
  const runId = positionals[0];
  const task = values.task === undefined ? undefined : parseCount(values.task, '--task', 0, 255);
  const reporter = new RunReporter({ json: values.json!, tty: Boolean(process.stderr.isTTY), stdout: process.stdout, stderr: process.stderr, task });
  const flags = { agent: values.agent, 'token-file': values['token-file'], 'ca-file': values['ca-file'], 'data-dir': values['data-dir'] };
  let publishes;
  try {
    publishes = (values.publish ?? []).map(parsePublish);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  let lastSeq = 0;
  let conn: Connection | undefined;
  const onSigint = () => {
    reporter.note(`stopped following ${runId}; it goes on (bytenite attach ${runId} to follow it again)`);
    process.exit(130);
  };
  process.on('SIGINT', onSigint);
  let forwards: PortForwards | undefined;
  try {
    if (publishes.length) {
      forwards = await PortForwards.listen(publishes, {
        tunnel: (r, p, t) => (conn ? conn.client.tunnel(r, p, t) : Promise.reject(new Error('not connected to the agent'))), task,
        dial: async (r, p, t) => (conn?.dial ? conn.dial(r, p, t) : null),
        onReady: (f, ms) => reporter.forwardReady(runId, { host: f.host, port: f.boundPort, url: forwardUrl(f.host, f.boundPort) }, f.containerPort, ms),
        onNote: (line) => reporter.note(line),
      });
      forwards.setRun(runId);
    }
    let lostSince = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        conn = await connect(flags);
      } catch (err) {
        if (!conn && attempt === 0) throw err; // never reached it: say so at once
        if (!flags.agent || Date.now() - lostSince > GIVE_UP_MS) throw err;
        await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]);
        continue;
      }
      if (forwards) {
        // A port already accepting gets its event at once; the replay brings `running` if the run runs.
        void conn.client.watchPorts(runId, [...new Set(forwards.forwards.map((f) => f.containerPort))]).catch(() => {});
      }
      // An interactive run's stdin, reopened on each connection: the program's input is this terminal again.
      const linker = values['no-stdin'] || values.json ? undefined : await stdinLinker(conn, runId, (line) => reporter.error(line), (line) => reporter.note(line));
      const outcome = await follow(conn, runId, lastSeq, (seq, e) => {
        lastSeq = seq;
        linker?.event(runId, e);
        reporter.event(runId, seq, e);
        forwards?.event(e);
      }).finally(() => linker?.close());
      if (outcome.final) return exitCodeOf(outcome.final);
      await conn.close().catch(() => {});
      // Only a remote agent can come back; an embedded one went with this process's connection.
      if (!flags.agent) throw new Error(outcome.lost);
      if (!lostSince) lostSince = Date.now();
      if (!values.json) reporter.note(`lost the agent (${outcome.lost}); reconnecting`);
      attempt = 0;
      await sleep(BACKOFF_MS[0]);
    }
  } catch (err) {
    const notFound = err instanceof AgentError && err.code === 'not_found';
    reporter.error(notFound ? `no run ${runId} on this agent (bytenite run lists its run id when it starts)` : (err as Error).message);
    return EXIT_NOT_RUN;
  } finally {
    process.off('SIGINT', onSigint);
    forwards?.close('the command ended');
    await conn?.close().catch(() => {});
  }
}

/** For a run started with -i: the link that gives it this terminal's input once (or as soon as) it runs. */
async function stdinLinker(conn: Connection, runId: string, say: (line: string) => void, note: (line: string) => void): Promise<InteractiveLinker | undefined> {
  const run = (await conn.client.list()).find((r) => r.runId === runId);
  if (!run?.interactive || run.final) return undefined;
  const tty = run.interactive.tty;
  const linker = new InteractiveLinker(tty, () => conn.current(), say, () => note(
    `attached to run ${runId}'s input${tty && process.stdin.isTTY ? ' (this terminal is raw: Ctrl-C goes to the program)' : ''}`));
  if (run.state === 'running') linker.open(runId);
  return linker;
}

/** Follows on one connection: resolves with the final event, or with why the connection was lost. */
function follow(
  conn: Connection, runId: string, afterSeq: number, onEvent: (seq: number, e: Parameters<Parameters<Connection['client']['attach']>[2]>[1]) => void,
): Promise<{ final?: FinalEvent; lost: string }> {
  return new Promise((resolve, reject) => {
    let seen = afterSeq;
    const offClose = conn.client.onClosed((reason) => resolve({ lost: reason }));
    conn.client.attach(runId, afterSeq, (seq, e) => {
      if (seq <= seen) return; // never twice, whatever the agent sends
      seen = seq;
      onEvent(seq, e);
      if (isFinal(e)) {
        offClose();
        resolve({ final: e, lost: '' });
      }
    }).catch((err) => {
      offClose();
      if (err instanceof AgentError && err.code === 'connection') resolve({ lost: err.message });
      else reject(err);
    });
  });
}

function exitCodeOf(final: FinalEvent): number {
  if (final.kind === 'failed' && final.exitCode === null) return EXIT_NOT_RUN;
  return final.exitCode ?? EXIT_NOT_RUN;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
