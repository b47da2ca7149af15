import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskLabeller } from '../../webview/panel/taskLog';
import { LineStore } from '../../webview/components/lineStore';
import { applyEvent, newRunModel } from '../../webview/panel/runModel';
import type { RunEvent } from '../../webview/protocol';

test('fan-out log: every line in "All tasks" starts with its task, and tasks never share a line', () => {
  const l = new TaskLabeller();
  const store = new LineStore();
  const add = (task: number, data: string) => store.append('stdout', l.label(task, 'stdout', data), 0);
  add(0, 'a1\na2 part');
  add(1, 'b1\n');
  add(0, 'a3\n');
  add(1, '');
  const texts = Array.from({ length: store.length }, (_, i) => store.snapshot(1000).lines[i]).map((x) => JSON.stringify(x));
  const all = texts.join('\n');
  for (const want of ['[task 0] a1', '[task 0] a2 part', '[task 1] b1', '[task 0] a3']) assert.ok(all.includes(want), `${want} in ${all}`);
  assert.equal(store.length, 4);
});

test('a fan-out task queued after the run started does not move the run back to queued', () => {
  const m = newRunModel('r');
  let seq = 0;
  const ev = (event: RunEvent) => applyEvent(m, { seq: ++seq, at: seq, event });
  ev({ kind: 'queued', task: 0, position: 1 });
  ev({ kind: 'running', task: 0, startedAt: new Date().toISOString() });
  ev({ kind: 'queued', task: 1, position: 1 });
  assert.equal(m.state, 'running');
  assert.equal(m.taskCount, 2);
});
