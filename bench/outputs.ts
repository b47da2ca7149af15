/**
 * Outputs benchmark: a container writes a 2 GiB file (BENCH_OUTPUT_MIB) to its output folder and exits.
 * Timed from the container's exit (the time it prints as its last act, on the machine's own clock) to the
 * last file on disk: `bytenite run` against an agent process, which exits once the files are written and
 * checked, vs `docker cp` of the same folder from the same image's stopped container, alternating run by
 * run. The file's size and the SHA-256 of its first part are checked on both sides; the peak memory
 * (VmHWM) of the CLI, the agent and the docker CLI is read for every run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  BENCH_ID, CLI, DOCKER, DOCKER_ENV, PAIRS, Result, comparison, dockerBuild, figure, log, makeContext, removeImage, startAgentProcess, tempDir,
} from './lib';

const MIB = Number(process.env.BENCH_OUTPUT_MIB ?? 2048);
const PART_MIB = 64;

/** The container: one random part repeated to MIB MiB (random data, quick to make), its SHA-256, then the kernel's uptime as it exits. */
const SCRIPT = `dd if=/dev/urandom of=/part bs=1M count=${PART_MIB} 2>/dev/null && ` +
  `i=0; while [ $i -lt ${MIB / PART_MIB} ]; do cat /part; i=$((i+1)); done > $BYTENITE_OUTPUT_DIR/big && ` +
  `sha256sum /part | cut -d' ' -f1 && rm /part && cut -d' ' -f1 /proc/uptime`;

/** The kernel's uptime in ms, the clock a container and this process share (10 ms resolution). */
function uptimeMs(): number {
  return Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000);
}

/** Peak resident memory of a live process, bytes (0 once it has gone). */
function vmHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs a command, polling its peak memory; resolves with its stdout, its exit time (uptimeMs) and the peak. */
function measured(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; endMs: number; peak: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    const poll = setInterval(() => { peak = Math.max(peak, vmHwm(child.pid!)); }, 20);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', () => { peak = Math.max(peak, vmHwm(child.pid!)); });
    child.on('close', (code) => {
      const endMs = uptimeMs();
      clearInterval(poll);
      if (code !== 0) reject(new Error(`${path.basename(cmd)} ${args.join(' ').slice(0, 200)} → exit ${code}: ${stderr.slice(-600)}`));
      else resolve({ stdout, endMs, peak });
    });
  });
}

async function check(file: string, partSha: string, who: string): Promise<void> {
  const size = statSync(file).size;
  if (size !== MIB * 1024 * 1024) throw new Error(`${who}: ${file} has ${size} bytes, want ${MIB * 1024 * 1024}`);
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => createReadStream(file, { end: PART_MIB * 1024 * 1024 - 1 }).on('data', (d) => h.update(d)).on('end', resolve).on('error', reject));
  if (h.digest('hex') !== partSha) throw new Error(`${who}: ${file} differs from what the container wrote`);
}

/** `sha\nuptime\n` as the script prints it. */
function parse(stdout: string): { partSha: string; exitMs: number } {
  const [sha, up] = stdout.trim().split('\n');
  return { partSha: sha, exitMs: Math.round(Number(up) * 1000) };
}

export async function benchOutputs(): Promise<Result[]> {
  const work = tempDir();
  const ctx = makeContext(path.join(work, 'ctx'), 'COPY job.sh /job.sh\nCMD ["sh", "/job.sh"]\n');
  writeFileSync(path.join(ctx, 'job.sh'), `${SCRIPT}\n`);
  const agent = await startAgentProcess(path.join(work, 'data'), {}, [], ['--hot-pool', '0']);
  const tag = `bytenite-bench-outputs:${BENCH_ID}`;
  dockerBuild(ctx, tag);
  const bytenite = { ms: [] as number[], cli: [] as number[], agent: [] as number[] };
  const docker = { ms: [] as number[], cli: [] as number[] };
  try {
    const byteniteOnce = async (counted: boolean) => {
      const out = path.join(work, 'b-out');
      rmSync(out, { recursive: true, force: true });
      agent.resetPeak();
      const r = await measured(process.execPath, [CLI, 'run', path.join(ctx, 'Dockerfile'), ...agent.flags, '--memory', '512m', '--out', out]);
      const { partSha, exitMs } = parse(r.stdout);
      await check(path.join(out, 'big'), partSha, 'bytenite');
      if (counted) {
        bytenite.ms.push(r.endMs - exitMs);
        bytenite.cli.push(r.peak / 2 ** 20);
        bytenite.agent.push(agent.peakMiB());
      }
      rmSync(out, { recursive: true, force: true });
      return r.endMs - exitMs;
    };
    const dockerOnce = async (counted: boolean) => {
      const name = `bytenite-bench-cp-${BENCH_ID}`;
      const out = path.join(work, 'd-out');
      rmSync(out, { recursive: true, force: true });
      execFileSync(DOCKER, ['rm', '-f', name], { stdio: 'ignore' });
      // The output folder exists in the container as ByteNite makes it; docker cp copies it whole.
      const stdout = execFileSync(DOCKER, ['run', '--name', name, '--memory', '512m', '-e', 'BYTENITE_OUTPUT_DIR=/tmp/out', tag, 'sh', '-c', 'mkdir -p /tmp/out && sh /job.sh'], { env: DOCKER_ENV, encoding: 'utf8' });
      const { partSha, exitMs } = parse(stdout);
      const t0 = uptimeMs();
      const r = await measured(DOCKER, ['cp', `${name}:/tmp/out`, out], DOCKER_ENV);
      execFileSync(DOCKER, ['rm', '-f', name], { stdio: 'ignore' });
      await check(path.join(out, 'big'), partSha, 'docker cp');
      // Counted from the exit as well, so both sides include the wait between exit and copy (docker's is the CLI's start).
      const ms = r.endMs - exitMs;
      if (counted) {
        docker.ms.push(ms);
        docker.cli.push(r.peak / 2 ** 20);
      }
      log(`outputs: docker cp alone ${r.endMs - t0} ms`);
      rmSync(out, { recursive: true, force: true });
      return ms;
    };
    log(`outputs: ${MIB} MiB, warm-up`);
    await byteniteOnce(false);
    await dockerOnce(false);
    for (let i = 0; i < PAIRS; i++) {
      const b = await byteniteOnce(true);
      const d = await dockerOnce(true);
      log(`outputs: pair ${i + 1}/${PAIRS}: ${b} vs ${d} ms`);
    }
  } finally {
    await agent.stop();
    removeImage(tag);
  }
  const size = MIB >= 1024 ? `${MIB / 1024} GiB` : `${MIB} MiB`;
  return [
    comparison(`10. a ${size} output, container exit to last file on disk: bytenite run vs docker cp`, bytenite.ms, docker.ms, { ratio: 1.2 }),
    figure(`10. a ${size} output: CLI peak memory (VmHWM)`, 'MiB', bytenite.cli, 200),
    figure(`10. a ${size} output: agent peak memory (VmHWM)`, 'MiB', bytenite.agent, 200),
    figure(`10. a ${size} output: docker cp peak memory (VmHWM), for comparison`, 'MiB', docker.cli),
  ];
}
