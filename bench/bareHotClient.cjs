'use strict';
/**
 * The floor of any Node client of the agent for a hot start (bench/firstLine.ts runs it as its own process):
 * plain CommonJS that loads `ws` and nothing else (no CLI bundle, no zod, no context listing), reads the token
 * file, sends `hello`, then the `run.create` the CLI itself sent for the same hot run (captured from the wire:
 * bench/captureRunCreate.ts), and writes the first `log` event's text to stdout; the benchmark's clock stops
 * at that byte, as it does for `bytenite run`. It then waits for the final event and checks it, so that a run
 * that was not hot, or failed, fails the benchmark instead of passing for a fast one.
 *
 * Usage: node bareHotClient.cjs URL TOKEN_FILE SPEC_FILE PROTOCOL EXPECTED_START
 */
const { readFileSync } = require('node:fs');
const WebSocket = require('ws');

const [url, tokenFile, specFile, protocol, expectedStart] = process.argv.slice(2);
const token = readFileSync(tokenFile, 'utf8').trim();
// The spec goes out as the text it was captured as: no object is built or validated here.
const spec = readFileSync(specFile, 'utf8').trim();

let ended = false;
const fail = (why) => {
  process.stderr.write(`bare client: ${why}\n`);
  process.exit(1);
};

const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` }, perMessageDeflate: false });
ws.on('error', (err) => fail(err.message));
ws.on('open', () => ws.send(`{"type":"hello","id":"h","protocol":${Number(protocol)},"client":"bytenite-bench/bare"}`));
ws.on('message', (data, isBinary) => {
  if (isBinary) fail('a binary frame: the agent asked for something a hot run should not need');
  const msg = JSON.parse(data.toString('utf8'));
  if (msg.type === 'hello') ws.send(`{"type":"run.create","id":"r","spec":${spec}}`);
  else if (msg.type === 'run.accepted') {
    // A context the agent lacks would need an upload, which this client does not do: the image must be warm.
    if (msg.upload) fail('the agent asked for the context: pick one whose image it already has');
  } else if (msg.type === 'error') fail(`${msg.code}: ${msg.message}`);
  else if (msg.type === 'event') {
    const e = msg.event;
    if (e.kind === 'log' && e.stream === 'stdout') process.stdout.write(e.data);
    else if (e.kind === 'exited' || e.kind === 'failed' || e.kind === 'cancelled') {
      if (e.kind !== 'exited' || e.exitCode !== 0) fail(`the run ended ${e.kind} ${e.exitCode ?? ''} ${e.message ?? ''}`);
      if (expectedStart && e.start !== expectedStart) fail(`the run started ${e.start}, not ${expectedStart}`);
      ended = true;
      ws.close(1000, 'done');
    }
  }
});
ws.on('close', () => (ended ? process.exit(0) : fail('the connection closed before the run ended')));
