/**
 * A terminal on `/exec/RUN` (agent/interactive/execServer.ts for the framing): the client of the CLI's
 * `bytenite exec -it` (agent/client/openExec.ts, through AgentClient.exec), with a TTY from the start at the
 * terminal's size. Binary frames out are keystrokes; binary frames in are output after a stream byte; a
 * text frame `{"exit":CODE}` comes before the agent's close.
 */
import { StringDecoder } from 'node:string_decoder';
import type WebSocket from 'ws';
import type { AgentClient } from '../../agent/client/agentClient';
import type { ShellChannel, ShellSink } from './shellChannel';

export async function openExecChannel(
  client: AgentClient, runId: string, cmd: string[], size: { cols?: number; rows?: number }, sink: ShellSink,
): Promise<ShellChannel> {
  const decoder = new StringDecoder('utf8');
  let exit: number | null | undefined;
  let closedByUser = false;
  // Listening from before the open: the shell's banner and prompt come with the upgrade's answer.
  const listen = (ws: WebSocket) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        const text = decoder.write(data.subarray(1));
        if (text) sink.output(text);
        return;
      }
      try {
        const m = JSON.parse(data.toString('utf8')) as { exit?: number | null };
        if ('exit' in m) exit = m.exit;
      } catch { /* not a frame of ours */ }
    });
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      const rest = decoder.end();
      if (rest) sink.output(rest);
      const decide = () => {
        // A refusal is the caller's rejection, in the agent's words; the user's own close needs no word.
        if (closedByUser || refused) return;
        if (exit !== undefined && exit !== null) return sink.exit(exit);
        sink.exit(undefined, code === 1000 ? 'the session ended' : `the session ended: ${reason.toString() || `connection closed (${code})`}`);
      };
      // Closed before the open was seen here (a command that ends at once, or a refusal): decided after it.
      if (opened) decide();
      else setTimeout(decide, 0);
    });
  };
  let opened = false;
  let refused = false;
  let ws: WebSocket;
  try {
    ws = await client.exec(runId, { cmd, tty: true, stdin: true, cols: size.cols, rows: size.rows }, listen);
  } catch (err) {
    refused = true;
    throw err;
  }
  opened = true;
  const send = (frame: string | Buffer, binary: boolean) => {
    if (ws.readyState === ws.OPEN) ws.send(frame, { binary });
  };
  return {
    write: (data) => send(Buffer.from(data, 'utf8'), true),
    resize: (cols, rows) => send(JSON.stringify({ resize: [cols, rows] }), false),
    close: () => {
      closedByUser = true;
      // The agent then destroys the exec's stream: the shell's terminal hangs up and it leaves.
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
    },
  };
}
