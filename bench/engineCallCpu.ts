/**
 * Engine CPU per Docker API call, one kind of call at a time, for finding what in a run's lifecycle costs
 * dockerd/containerd (issue 16 point 4). Not part of the suite: `npx tsx bench/engineCallCpu.ts`. Each row is
 * the engine CPU (bench/engineCpu.ts) over N calls and 1 s after, divided by N, so it includes the engine's
 * idle background (the control row shows how much).
 */
import Docker from 'dockerode';
import { execFileSync } from 'node:child_process';
import { measureEngineCpu } from './engineCpu';
import { BENCH_ID, BENCH_LABEL, DOCKER, dockerBuild, makeContext, removeImage, tempDir } from './lib';

const N = Number(process.env.CALLS ?? 10);
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function row(name: string, calls: () => Promise<unknown> | unknown): Promise<void> {
  await sleep(1500); // let the previous row's work settle out of this one
  const cpu = measureEngineCpu();
  await calls();
  await sleep(1000);
  console.log(`${name}: ${(cpu.stop() / N).toFixed(1)} ms engine CPU per call`);
}

const drain = (s: NodeJS.ReadableStream) => new Promise((r) => { s.on('end', r); s.resume(); });

async function main(): Promise<void> {
  const image = `bytenite-bench-calls:${BENCH_ID}`;
  dockerBuild(makeContext(tempDir('calls'), ''), image);
  const network = `bytenite-bench-calls-${BENCH_ID}`;
  execFileSync(DOCKER, ['network', 'create', '--label', BENCH_LABEL, '--opt', 'com.docker.network.bridge.enable_icc=false', network]);
  const made: Docker.Container[] = [];
  try {
    const run = (net: string) => () => { for (let i = 0; i < N; i++) execFileSync(DOCKER, ['run', '--rm', '--network', net, image, 'true']); };
    await row('docker run --rm, default bridge', run('bridge'));
    await row('docker run --rm, user-defined bridge (icc off)', run(network));
    await row('docker run --rm, --network none', run('none'));
    const tar = execFileSync('tar', ['-c', '-C', '/etc', 'hostname']);
    await row('create (network none)', async () => {
      for (let i = 0; i < N; i++) made.push(await docker.createContainer({ Image: image, Cmd: ['sleep', '60'], Labels: { [BENCH_LABEL]: '' }, HostConfig: { NetworkMode: 'none' } }));
    });
    await row('PUT archive, created container', async () => { for (const c of made) await c.putArchive(tar, { path: '/' }); });
    await row('GET archive of one small file, created container', async () => { for (const c of made) await drain(await c.getArchive({ path: '/hostname' })); });
    await row('GET archive of a missing path (404)', async () => { for (const c of made) await c.getArchive({ path: '/nope' }).catch(() => 0); });
    await row('changes (docker diff), created container', async () => { for (const c of made) await c.changes(); });
    await row('inspect of the path (HEAD archive), created container', async () => { for (const c of made) await c.infoArchive({ path: '/hostname' }); });
    await row('start', async () => { for (const c of made) await c.start(); });
    await row('inspect, running', async () => { for (const c of made) await c.inspect(); });
    await row('stats stream held 1 s', async () => { for (const c of made) { const s = await c.stats({ stream: true }) as NodeJS.ReadableStream & { destroy(): void }; s.resume(); await sleep(1000); s.destroy(); } });
    await row('idle 1 s (control)', async () => { for (let i = 0; i < N; i++) await sleep(1000); });
    await row('remove -f, running', async () => { for (const c of made.splice(0)) await c.remove({ force: true }); });
  } finally {
    for (const c of made) await c.remove({ force: true }).catch(() => 0);
    execFileSync(DOCKER, ['network', 'rm', network]);
    removeImage(image);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
