/**
 * Sees what a client sends on a run: a WebSocket relay on 127.0.0.1 in front of the agent that forwards every
 * frame both ways unchanged (the Authorization header included) and keeps the client's text messages. The
 * hot-start floor sends the `run.create` the CLI sent, not one rebuilt here, so that the two ask the agent
 * for the same run.
 */
import WebSocket, { WebSocketServer } from 'ws';
import { MAX_FRAME } from '../agent/protocol/version';

export interface Captured {
  /** The `type` of each text message the client sent, in order. */
  types: string[];
  /** The `spec` of the first `run.create`, as the JSON text the client sent. */
  spec: string;
}

/** Runs `client` with the relay's ws:// address in place of the agent's, and returns what it sent. */
export async function captureRunCreate(agentUrl: string, client: (url: string) => Promise<unknown>): Promise<Captured> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: MAX_FRAME, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const types: string[] = [];
  let spec: string | undefined;
  server.on('connection', (down, req) => {
    const up = new WebSocket(agentUrl, {
      headers: req.headers.authorization ? { Authorization: req.headers.authorization } : {}, maxPayload: MAX_FRAME, perMessageDeflate: false,
    });
    const early: [WebSocket.RawData, boolean][] = [];
    down.on('message', (data, isBinary) => {
      if (!isBinary) {
        const msg = JSON.parse(data.toString()) as { type: string; spec?: unknown };
        types.push(msg.type);
        if (msg.type === 'run.create') spec ??= JSON.stringify(msg.spec);
      }
      if (up.readyState === WebSocket.OPEN) up.send(data, { binary: isBinary });
      else early.push([data, isBinary]);
    });
    up.on('open', () => {
      for (const [data, binary] of early.splice(0)) up.send(data, { binary });
    });
    up.on('message', (data, isBinary) => down.send(data, { binary: isBinary }));
    const end = () => {
      down.close();
      up.close();
    };
    up.on('close', end);
    down.on('close', end);
    up.on('error', end);
    down.on('error', end);
  });
  try {
    const { port } = server.address() as { port: number };
    await client(`ws://127.0.0.1:${port}`);
  } finally {
    for (const c of server.clients) c.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  if (!spec) throw new Error(`the client sent no run.create (it sent: ${types.join(', ') || 'nothing'})`);
  return { types, spec };
}
