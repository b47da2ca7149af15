/**
 * A download cache mount, as Docker's docs recommend for pip, apt and npm: `RUN --mount=type=cache` fetches
 * "packages" into the cache unless they are there, then installs them. A source change re-runs that step;
 * the downloads should not happen again. The "index" is an HTTP server of this process, reached from the
 * build at the bridge's gateway and held to BENCH_CACHE_MBPS (default 25 MB/s, a good home connection), so
 * a first build pays for its 60 MB. ByteNite's rebuild after a source change against its own first build
 * (the issue's target: at most 0.5), with BuildKit `docker build` doing the same as a row of its own.
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runJson } from './cliRun';
import { BENCH_ID, DOCKER, DOCKER_ENV, PAIRS, Result, comparison, log, makeContext, onCleanup, removeImage, runProcess, startAgentProcess, tempDir } from './lib';

const PACKAGES = 12;
const PACKAGE_BYTES = 5_000_000;
const MBPS = Number(process.env.BENCH_CACHE_MBPS ?? 25);

/** Serves /pkg/NAME: PACKAGE_BYTES of a byte pattern, paced to MBPS for all downloads together. */
async function packageIndex(): Promise<{ port: number; served: () => number; close(): void }> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let served = 0;
  let nextFree = 0; // the shared link: when it can take the next chunk
  const server = http.createServer((req, res) => {
    if (!req.url?.startsWith('/pkg/')) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Length': PACKAGE_BYTES });
    let left = PACKAGE_BYTES;
    const send = () => {
      if (left <= 0) return void res.end();
      const n = Math.min(chunk.length, left);
      left -= n;
      served += n;
      const now = Date.now();
      nextFree = Math.max(nextFree, now) + (n / (MBPS * 1e6)) * 1000;
      res.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      setTimeout(send, Math.max(0, nextFree - now));
    };
    send();
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  onCleanup(() => server.close());
  return { port: (server.address() as AddressInfo).port, served: () => served, close: () => server.close() };
}

/** The engine's host as its default bridge's containers (and BuildKit's RUN steps) reach it. */
function bridgeGateway(): string {
  const cfg = JSON.parse(execFileSync(DOCKER, ['network', 'inspect', 'bridge', '--format', '{{json .IPAM.Config}}']).toString()) as { Gateway?: string; Subnet?: string }[];
  if (cfg[0]?.Gateway) return cfg[0].Gateway;
  // Not always written down (Debian's 20.10): the subnet's first address, which docker0 takes.
  const m = /^(\d+\.\d+\.\d+)\.0\/\d+$/.exec(cfg[0]?.Subnet ?? '');
  if (!m) throw new Error(`no gateway for the default bridge: ${JSON.stringify(cfg)}`);
  return `${m[1]}.1`;
}

function context(dir: string, index: string, cacheId: string): string {
  makeContext(dir, [
    'COPY requirements.txt /app/requirements.txt',
    'COPY src /app/src',
    // The pip-style step: fetch what the cache lacks, then install from it. Each pair has a cache of its own.
    `RUN --mount=type=cache,id=${cacheId},target=/cache sh -c 'for p in $(cat /app/requirements.txt); do ` +
      `[ -f /cache/$p ] || wget -q -O /cache/$p ${index}/pkg/$p; done; mkdir -p /site; for p in $(cat /app/requirements.txt); do cp /cache/$p /site/; done'`,
    'CMD ["sh", "-c", "ls /site | wc -l; cat /app/src/main.txt"]', '',
  ].join('\n'));
  writeFileSync(path.join(dir, 'requirements.txt'), Array.from({ length: PACKAGES }, (_, i) => `pkg${i}`).join('\n') + '\n');
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  writeFileSync(path.join(dir, 'src', 'main.txt'), 'v1\n');
  return dir;
}

export async function benchCacheMount(): Promise<Result[]> {
  const work = tempDir();
  const index = await packageIndex();
  const url = `http://${bridgeGateway()}:${index.port}`;
  const agent = await startAgentProcess(path.join(work, 'data'));
  const hw = ['--cpus', '1', '--memory', '512m'];
  const mine = { first: [] as number[], again: [] as number[] };
  const theirs = { first: [] as number[], again: [] as number[] };
  try {
    for (let i = 0; i <= PAIRS; i++) {
      // ByteNite: first build with an empty cache, then a source change.
      const dir = context(path.join(work, `ctx-${i}`), url, `bench-${BENCH_ID}-${i}`);
      const before = index.served();
      const a = await runJson([path.join(dir, 'Dockerfile'), ...agent.flags, ...hw]);
      if (a.start !== 'cold' || !a.stdout.startsWith(`${PACKAGES}\n`)) throw new Error(`first build: ${a.start}, ${JSON.stringify(a.stdout)}`);
      const fetched = index.served() - before;
      writeFileSync(path.join(dir, 'src', 'main.txt'), 'v2\n');
      const mid = index.served();
      const b = await runJson([path.join(dir, 'Dockerfile'), ...agent.flags, ...hw]);
      if (b.start !== 'cold' || !b.stdout.endsWith('v2\n')) throw new Error(`rebuild: ${b.start}, ${JSON.stringify(b.stdout)}`);
      if (index.served() !== mid) throw new Error(`the rebuild downloaded ${index.served() - mid} bytes again: the cache mount did not keep them`);
      if (fetched !== PACKAGES * PACKAGE_BYTES) throw new Error(`the first build fetched ${fetched} bytes, not ${PACKAGES * PACKAGE_BYTES}`);
      removeImage(a.image);
      removeImage(b.image);
      // The same with BuildKit docker build, a cache of its own.
      const twin = context(path.join(work, `twin-${i}`), url, `bench-${BENCH_ID}-docker-${i}`);
      const tag = `bytenite-bench-cache:${BENCH_ID}`;
      // Not execFileSync: the index serving the downloads is in this process.
      const build = async () => (await runProcess(DOCKER, ['build', '-q', '-t', tag, twin], { env: { ...DOCKER_ENV, DOCKER_BUILDKIT: '1' } })).ms;
      const c = await build();
      writeFileSync(path.join(twin, 'src', 'main.txt'), 'v2\n');
      const mid2 = index.served();
      const d = await build();
      if (index.served() !== mid2) throw new Error('docker build\'s rebuild downloaded again');
      removeImage(tag);
      log(`cache mount: ${i ? `pair ${i}/${PAIRS}` : 'warm-up'}: ByteNite first ${a.startingMs.toFixed(0)} ms, after a change ${b.startingMs.toFixed(0)} ms; ` +
        `docker build ${c.toFixed(0)} / ${d.toFixed(0)} ms`);
      if (i) {
        mine.first.push(a.startingMs); mine.again.push(b.startingMs);
        theirs.first.push(c); theirs.again.push(d);
      }
    }
  } finally {
    await agent.stop();
    index.close();
  }
  const name = `2. cache mount (${PACKAGES} × 5 MB fetched at ${MBPS} MB/s into RUN --mount=type=cache), rebuild after a source change`;
  const r = comparison(`${name}: ByteNite, vs its own first build`, mine.again, mine.first, { ratio: 0.5 });
  r.note = 'command → `starting`; the rebuild is checked to fetch nothing';
  const d = comparison(`${name}: \`DOCKER_BUILDKIT=1 docker build\`, vs its own first build`, theirs.again, theirs.first);
  const vs = comparison(`${name}: ByteNite vs \`DOCKER_BUILDKIT=1 docker build\``, mine.again, theirs.again);
  return [r, d, vs];
}
