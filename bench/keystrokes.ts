/**
 * Keystroke echo latency of an interactive session: `bytenite run -it … -- cat` through the embedded agent
 * (the CLI is the agent) and through a standalone agent process, against `docker exec -it CONTAINER cat` on
 * the same machine. Each runs on a pseudo-terminal of its own (`script`); the echo is the container's own
 * terminal's (cat in canonical mode), so each key goes to the container and back. The three sessions are
 * open together and typed into in turn, key by key, so that the machine's noise falls on all three alike.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { BENCH_ID, BENCH_LABEL, CLI, DOCKER, Result, log, makeContext, median, onCleanup, startAgentProcess, tempDir } from './lib';

const KEYS = Number(process.env.BENCH_KEYS ?? 100);
const WARMUP = 5;
const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

class Session {
  private readonly child: ChildProcess;
  private out = '';
  private waiters: (() => void)[] = [];

  constructor(readonly name: string, argv: string[]) {
    this.child = spawn('script', ['-qefc', `stty cols 100 rows 30; ${argv.map(quote).join(' ')}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const take = (d: Buffer) => {
      this.out += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    onCleanup(() => {
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    });
  }

  /** Resolves once the output holds `text` after `from`; returns where it ends. */
  async see(text: string, from = 0, ms = 120_000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const i = this.out.indexOf(text, from);
      if (i >= 0) return i + text.length;
      if (Date.now() - t0 > ms) throw new Error(`${this.name}: "${text}" not seen within ${ms} ms; it shows: ${this.out.slice(-600)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200).unref();
      });
    }
  }

  /** One key typed, and the time until its echo is back, in ms. */
  async key(from: number): Promise<{ ms: number; at: number }> {
    const t0 = performance.now();
    this.child.stdin!.write('k');
    const at = await this.see('k', from, 10_000);
    return { ms: performance.now() - t0, at };
  }

  /** Ends cat (end of the line, then end of input) and waits for the session to exit. */
  async end(): Promise<void> {
    const exited = new Promise((r) => this.child.once('close', r));
    this.child.stdin!.write('\x04\x04');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  }
}

function row(name: string, xs: number[], ys: number[], note: string): Result {
  const ratio = median(xs) / median(ys);
  return { name, unit: 'ms', bytenite: xs, baseline: ys, medianBytenite: median(xs), medianBaseline: median(ys), medianRatio: ratio, target: '', met: null, note };
}

export async function benchKeystrokes(): Promise<Result[]> {
  const work = tempDir();
  const ctx = makeContext(path.join(work, 'ctx'), '');
  const agent = await startAgentProcess(path.join(work, 'agent-data'));
  onCleanup(() => void agent.stop());
  const container = execFileSync(DOCKER, ['run', '-d', '--label', BENCH_LABEL, `bytenite-bench-base:${BENCH_ID}`, 'sleep', '600'], { encoding: 'utf8' }).trim();
  onCleanup(() => execFileSync(DOCKER, ['rm', '-f', container], { stdio: 'ignore' }));
  // `echo ready` says the program runs; the pause after it lets the CLI open the stdin socket and go raw.
  const program = ['sh', '-c', 'echo re""ady; exec cat'];
  const sessions = [
    new Session('embedded', [process.execPath, CLI, 'run', '-it', path.join(ctx, 'Dockerfile'), '--data-dir', path.join(work, 'local-data'), '--', ...program]),
    new Session('standalone', [process.execPath, CLI, 'run', '-it', path.join(ctx, 'Dockerfile'), ...agent.flags, '--', ...program]),
    new Session('docker', [DOCKER, 'exec', '-it', container, ...program]),
  ];
  const at = await Promise.all(sessions.map((s) => s.see('ready\r')));
  await new Promise((r) => setTimeout(r, 1500));
  const times: number[][] = sessions.map(() => []);
  for (let i = 0; i < WARMUP + KEYS; i++) {
    for (let s = 0; s < sessions.length; s++) {
      const k = await sessions[s].key(at[s]);
      at[s] = k.at;
      if (i >= WARMUP) times[s].push(k.ms);
    }
  }
  await Promise.all(sessions.map((s) => s.end()));
  const [embedded, standalone, docker] = times;
  const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
  log(`keystrokes: median embedded ${median(embedded).toFixed(2)} ms, standalone ${median(standalone).toFixed(2)} ms, docker exec -it ${median(docker).toFixed(2)} ms`);
  // The table rounds to whole milliseconds: the note has the figures.
  const note = (xs: number[]) => `${KEYS} keys, typed in turn with the other sessions; median ${median(xs).toFixed(2)} vs ${median(docker).toFixed(2)} ms, p90 ${p90(xs).toFixed(2)} vs ${p90(docker).toFixed(2)} ms`;
  return [
    row('keystroke echo, `run -it` through the embedded agent (`docker exec -it`)', embedded, docker, note(embedded)),
    row('keystroke echo, `run -it` through a standalone agent (`docker exec -it`)', standalone, docker, note(standalone)),
  ];
}
