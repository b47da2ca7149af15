/**
 * Renders docs/protocol.md from the schemas, so the document cannot drift from the code: a unit test
 * compares the committed file with this output (`npm run docs:protocol` rewrites it).
 */
import { z } from 'zod';
import { AgentMessage, ClientMessage, RunEvent, RunSpec, HardwareRequest, CostBreakdown, Phases, Catalog } from './messages';
import { PROTOCOL_VERSION, MAX_TEXT_FRAME, MAX_FRAME, CHUNK_SIZE } from './version';

type Json = {
  type?: string | string[]; properties?: Record<string, Json>; required?: string[]; description?: string;
  const?: unknown; enum?: unknown[]; items?: Json; anyOf?: Json[]; oneOf?: Json[]; additionalProperties?: Json | boolean;
  pattern?: string; minimum?: number; maximum?: number; $ref?: string;
};

const NAMED: Array<[string, z.ZodType]> = [
  ['RunSpec', RunSpec], ['HardwareRequest', HardwareRequest], ['Phases', Phases], ['CostBreakdown', CostBreakdown], ['Catalog', Catalog],
];

function schemaOf(s: z.ZodType): Json {
  return z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;
}

const NAMED_JSON = NAMED.map(([name, s]) => [name, JSON.stringify(stripDescription(schemaOf(s)))] as const);

function stripDescription(j: Json): Json {
  const { description: _d, ...rest } = j as Json & { $schema?: string };
  delete (rest as { $schema?: string }).$schema;
  return rest;
}

/** A short human type for a JSON schema node: `string`, `integer ≥ 0`, `"stdout" \| "stderr"`, a named shape... */
function typeOf(j: Json): string {
  const same = NAMED_JSON.find(([, text]) => text === JSON.stringify(stripDescription(j)));
  if (same) return `[${same[0]}](#${same[0].toLowerCase()})`;
  if (j.const !== undefined) return `\`${JSON.stringify(j.const)}\``;
  if (j.enum) return j.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  const alts = j.anyOf ?? j.oneOf;
  if (alts) return alts.map(typeOf).join(' \\| ');
  if (j.type === 'array') return `array of ${j.items ? typeOf(j.items) : 'any'}`;
  if (j.type === 'object') {
    if (j.properties) return `{ ${Object.keys(j.properties).join(', ')} }`;
    if (j.additionalProperties && typeof j.additionalProperties === 'object') return `map of string → ${typeOf(j.additionalProperties)}`;
    return 'object';
  }
  let t = Array.isArray(j.type) ? j.type.join(' \\| ') : j.type ?? 'any';
  if (j.minimum !== undefined) t += ` ≥ ${j.minimum}`;
  if (j.maximum !== undefined && j.maximum < Number.MAX_SAFE_INTEGER) t += ` ≤ ${j.maximum}`;
  if (j.pattern) t += ` matching \`${j.pattern}\``;
  return t;
}

function fieldsTable(j: Json, skip: string[]): string {
  const props = Object.entries(j.properties ?? {}).filter(([k]) => !skip.includes(k));
  if (!props.length) return '_No fields besides the ones above._\n';
  const req = new Set(j.required ?? []);
  const rows = props.map(([k, v]) => `| \`${k}\` | ${typeOf(v)} | ${req.has(k) ? 'yes' : 'no'} | ${(v.description ?? '').replace(/\|/g, '\\|')} |`);
  return ['| field | type | required | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}

function section(union: z.ZodDiscriminatedUnion, key: string, skip: string[]): string {
  return union.options.map((opt) => {
    const j = schemaOf(opt as z.ZodType);
    const tag = String(j.properties?.[key]?.const);
    return `### \`${tag}\`\n\n${j.description ?? ''}\n\n${fieldsTable(j, [key, ...skip])}`;
  }).join('\n');
}

export function renderProtocolDoc(): string {
  const shapes = NAMED.map(([name, s]) => {
    const j = schemaOf(s);
    return `### ${name}\n\n${j.description ?? ''}\n\n${fieldsTable(j, [])}`;
  }).join('\n');
  return `<!-- Generated from agent/protocol/messages.ts by \`npm run docs:protocol\`. Do not edit by hand: test/unit/protocolDoc.test.ts fails when this file and the schema differ. -->
# The ByteNite wire protocol, version ${PROTOCOL_VERSION}

Clients (the \`bytenite\` CLI, the VS Code extension) talk to an agent over one WebSocket.

- **Connect** to \`ws://HOST:PORT\` (or \`wss://\` when the agent has a certificate) with the header
  \`Authorization: Bearer <token>\`. A missing or wrong token gets HTTP 401 before the WebSocket opens; after
  repeated failures from one address, every attempt from it gets HTTP 429 with \`Retry-After\` for a while.
- **Tenants.** The token names the tenant. A connection lists, follows, cancels and downloads its own tenant's
  runs only: another tenant's run id gets \`not_found\`, the same answer as an id that does not exist. Warm starts
  reuse only images the same tenant built.
- **Slow readers.** A connection that reads slower than its runs print is not closed: once a few MiB of events
  wait for it, the agent stops sending live events and feeds it the rest from the run's journal, in order and
  at its pace, then live again; nothing is skipped. If a connection is lost anyway, attach again with the last
  \`seq\` seen. A connection that does not answer pings is closed after two heartbeat intervals.
- **Text frames** carry one JSON message each, at most ${MAX_TEXT_FRAME} bytes. **Binary frames** carry context bytes
  (client → agent) and output archives (agent → client), in chunks of ${CHUNK_SIZE} bytes. No frame may exceed
  ${MAX_FRAME} bytes: the agent closes a connection that sends one (close code 1009).
- **Hello first.** The client sends \`hello\` with its protocol version; the agent answers \`hello\` with its own
  version and capabilities, or an \`incompatible_version\` error. Any other request before it gets \`hello_required\`.
- **Requests and replies.** Every client message carries an \`id\`; the reply (or \`error\`) carries it back as
  \`inReplyTo\`. An invalid message gets an \`error\` naming the field at fault, and the connection stays usable.
- **Run events.** A run's events go to every connection that follows it (the one that created it, and any that
  sent \`run.attach\`). Each carries the \`runId\` and a \`seq\` that starts at 1 and grows by exactly one, so a
  client that reconnects can ask for the events after the last \`seq\` it saw, with no gap and no duplicate.
  Exactly one final event (\`exited\`, \`failed\` or \`cancelled\`) ends a run, sent after its container is removed.
- **A run, cold:** \`run.create\` → \`run.accepted\` with \`upload: true\` → the client sends the context's
  manifest (\`context.manifest\` parts, each answered by \`context.missing\`: the file contents the agent lacks) →
  the asked contents as binary frames, back to back in the order asked → \`upload.end\` → \`ok\` → events
  (\`queued\`?, \`uploading\`, \`building\`…, \`starting\` (cold), \`running\`, \`log\`/\`stats\`/\`cost\`…, final). The
  agent checks the manifest (no entry may leave the context or lie under a symlink; a symlink itself may point
  anywhere: it travels as a link), recomputes its digest, verifies each content's
  SHA-256 as it arrives (a mismatch is a \`bad_context\` error naming the file, and the run fails), and builds
  from a tar it assembles from its content store: the build starts once the manifest checks out and reads each
  content as it arrives (so a run's \`uploadMs\` covers the manifest; the contents' transfer is in \`buildMs\`).
  The store is per tenant (a tenant is never told what another one uploaded) and bounded
  (\`bytenite agent --context-store SIZE\`, default 2 GiB; least recently used contents go first). Agents with
  a store say \`context-store\` in their hello capabilities.
- **A run, cold, whole tar:** for clients without manifests, the same exchange with the whole context tar as the
  binary frames instead of \`context.manifest\`; the agent checks the tar and recomputes its digest.
- **A run, warm:** the agent already has an image built from \`spec.contextDigest\`: \`run.accepted\` says
  \`upload: false\`, and the events go straight to \`starting\` (warm).
- **Outputs:** \`outputs.get\` → \`outputs\` (the offset, and the size once known) → binary frames (a tar whose
  entries start with the output folder's own name) → \`outputs.end\` (size, SHA-256, counts; or \`error\`). After
  the final event, or earlier with \`wait: true\`: the agent answers once the container has stopped and sends the
  archive while it still copies it out. A cut download asks again with \`offset\` = the bytes it has. The agent
  keeps outputs (apart from the journal, within \`bytenite agent --outputs-budget\`) until a client sends
  \`outputs.fetched\`, or its retention time passes; a run whose outputs could not be kept says why in
  \`outputs.notKept\` of its final event. One download at a time per connection. Agents that do this say
  \`outputs-resume\` in their hello capabilities.
- **Port forwards (tunnels):** not messages of this connection. Each forwarded TCP connection is a WebSocket of
  its own to \`/tunnel/RUN_ID/PORT\` (\`?task=K\` on a fan-out run) on the agent's address, with the same
  \`Authorization: Bearer\` token, so each has TCP's own flow control and a stalled one holds back nothing else.
  The agent checks before the upgrade and refuses with a plain HTTP status and the reason as the body: 404 (not
  this tenant's run: the same words as for a run that does not exist), 409 (not running yet: retry), 410 (the run
  is over), 501 (the engine cannot reach container ports), 502 (the container did not take the connection).
  Binary frames are the bytes; the text frame \`end\` is a half-close; close code 1000 ends a tunnel whose two
  directions ended, 4001 one whose container stopped or run ended, 4002 one whose TCP side failed, with the reason.
  \`spec.ports\` and \`ports.watch\` ask for a \`port\` event when a container port first accepts a connection.
  Agents that do this say \`ports\` in their hello capabilities.
- **Interactive runs (\`spec.interactive\`, \`run -i\` / \`-it\`):** the program's output is the run's \`log\` events
  as for any run (with a terminal, one raw stream on \`stdout\`). Its stdin is a WebSocket of its own to
  \`/stdin/RUN_ID[?cols=C&rows=R]\`, with the same token and checks as tunnels (404 word for word for another
  tenant's run, 409 not running yet: retry, 410 over). Binary frames are stdin; text frames are
  \`{"resize":[COLS,ROWS]}\` and \`{"eof":true}\` (end of input). A program that reads slowly holds its client
  back (the socket is not read). The agent closes the socket (1000) when the run ends. While no client is
  attached for the agent's grace period (60 s), and after \`idleTimeoutMs\` without input or output (an \`idle\`
  event warns first), the run is stopped: \`failed\` with code \`timeout\` and the reason. Agents that do this say
  \`interactive\` in their hello capabilities.

## Client → agent

${section(ClientMessage, 'type', ['id'])}
Every message above also carries \`id\` (string): the request id that the reply echoes.

## Agent → client

${section(AgentMessage, 'type', [])}
## Run events (the \`event\` field of an \`event\` message)

${section(RunEvent, 'kind', [])}
## Shapes

${shapes}`;
}
