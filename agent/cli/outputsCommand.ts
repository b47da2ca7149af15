/** `bytenite outputs RUN [--out DIR]`: fetch a finished run's output files (again), e.g. after a cut connection. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fetchOutputs } from '../client/fetchOutputs';
import { formatBytes } from '../hardware/sizes';
import { connect } from './connect';
import { EXIT_NOT_RUN, UsageError } from './runCommand';

export const OUTPUTS_HELP = `Usage: bytenite outputs RUN [--out DIR] [--agent URL --token-file FILE [--ca-file FILE]]

Fetches the files RUN left in its output folder, as \`bytenite run\` does when the run ends. The agent
keeps a run's outputs until a client has fetched them, or its retention time (\`bytenite hardware\`).
Files are written as they arrive and appear in DIR only once complete and checked.

Options:
  --out DIR            where the files go (default: ./bytenite-out/RUN)
  --agent URL          a remote agent, ws:// or wss:// (default: the local embedded agent)
  --token-file FILE    the agent's token (or set BYTENITE_TOKEN)
  --ca-file FILE       CA certificate (PEM) for a wss:// agent's self-signed certificate
  --data-dir DIR       data folder of the embedded agent
`;

export async function outputsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      out: { type: 'string' }, agent: { type: 'string' }, 'token-file': { type: 'string' }, 'ca-file': { type: 'string' },
      'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(OUTPUTS_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('name one run: bytenite outputs RUN');
  const runId = positionals[0];
  const out = path.resolve(values.out ?? path.join('bytenite-out', runId));
  let conn;
  try {
    conn = await connect(values);
  } catch (err) {
    process.stderr.write(`bytenite: ${(err as Error).message}\n`);
    return EXIT_NOT_RUN;
  }
  const tty = Boolean(process.stderr.isTTY);
  let shown = 0;
  try {
    const got = await fetchOutputs({
      runId, outDir: out, connect: () => conn.current(),
      onProgress: (n, total) => {
        if (!tty || Date.now() - shown < 200) return;
        shown = Date.now();
        process.stderr.write(`\r\x1b[2Kbytenite: outputs ${formatBytes(n)}${total ? ` / ${formatBytes(total)}` : ''}`);
      },
      onResume: (offset, why) => process.stderr.write(`${tty ? '\r\x1b[2K' : ''}bytenite: download cut (${why}); resuming at ${formatBytes(offset)}\n`),
    });
    if (tty && shown) process.stderr.write('\r\x1b[2K');
    process.stderr.write(got.files > 0
      ? `bytenite: ${got.files} output file(s), ${formatBytes(got.bytes)}, in ${path.relative(process.cwd(), out) || '.'}\n`
      : `bytenite: ${runId} left no files in its output folder\n`);
    return 0;
  } catch (err) {
    if (tty && shown) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`bytenite: ${(err as Error).message}\n`);
    return EXIT_NOT_RUN;
  } finally {
    await conn.close();
  }
}
