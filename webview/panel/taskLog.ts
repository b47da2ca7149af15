/**
 * The log of a fan-out run: one store with every task's lines, each labelled `[task N]` ("All tasks"),
 * and one store per task, so the task filter switches stores instead of re-reading the whole log.
 */
import { LineStore } from '../components/lineStore';
import type { LogStream } from '../protocol';

/** Labels chunks for the "All tasks" store: every line starts with `[task N] `. */
export class TaskLabeller {
  private last: string | undefined;
  private atLineStart = true;

  label(task: number, stream: LogStream, data: string): string {
    if (data === '') return '';
    const key = `${task}/${stream}`;
    let out = '';
    // Another task's (or stream's) bytes never continue this task's partial line.
    if (!this.atLineStart && this.last !== key) {
      out = '\n';
      this.atLineStart = true;
    }
    const tag = `[task ${task}] `;
    out += (this.atLineStart ? tag : '') + data.replace(/\n(?=[\s\S])/g, `\n${tag}`);
    this.last = key;
    this.atLineStart = data.endsWith('\n');
    return out;
  }
}

/** The per-task stores, made on a task's first line. */
export class TaskStores {
  private readonly stores = new Map<number, LineStore>();

  get(task: number): LineStore {
    let s = this.stores.get(task);
    if (!s) this.stores.set(task, (s = new LineStore()));
    return s;
  }
}
