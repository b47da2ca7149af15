/**
 * `bytenite run --json` as a child process, read event by event: when each event arrived, the context
 * bytes the agent reported receiving (`uploading`), the container's stdout, and the final event.
 */
import { spawn } from 'node:child_process';
import type { FinalEvent, RunEvent } from '../agent/protocol';
import { CLI } from './lib';

export interface JsonRun {
  /** ms from spawn to the `starting` event: the image is ready (uploaded and built, or found warm). */
  startingMs: number;
  start: 'hot' | 'warm' | 'cold';
  image: string;
  /** Largest `bytesDone` of the `uploading` events: context bytes that crossed the wire (0 when warm). */
  uploadedBytes: number;
  stdout: string;
  final: FinalEvent;
  ms: number;
}

export function runJson(args: string[]): Promise<JsonRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'run', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    let startingMs = NaN;
    let start: 'hot' | 'warm' | 'cold' | undefined;
    let image = '';
    let uploadedBytes = 0;
    let stdout = '';
    let final: FinalEvent | undefined;
    let lastSeq = 0;
    let bad: string | undefined;
    child.stdout.on('data', (d: Buffer) => {
      const now = performance.now() - t0;
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as { seq: number; event: RunEvent };
        if (msg.seq !== lastSeq + 1) bad ??= `event seq ${msg.seq} after ${lastSeq}`;
        lastSeq = msg.seq;
        const e = msg.event;
        if (e.kind === 'uploading' && !e.to) uploadedBytes = Math.max(uploadedBytes, e.bytesDone);
        else if (e.kind === 'starting') {
          startingMs = now;
          start = e.start;
          image = e.image;
        } else if (e.kind === 'log' && e.stream === 'stdout') stdout += e.data;
        else if (e.kind === 'exited' || e.kind === 'failed' || e.kind === 'cancelled') final = e;
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (bad || code !== 0 || !final || final.kind !== 'exited' || !start) {
        reject(new Error(`bytenite run ${args.join(' ')} → exit ${code}, ${bad ?? final?.kind ?? 'no final event'}: ${stderr.slice(-800)}`));
      } else resolve({ startingMs, start, image, uploadedBytes, stdout, final, ms });
    });
  });
}
