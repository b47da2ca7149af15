// Fan-out (`bytenite run --parallel N`) on the single-machine engine, through the real CLI and the embedded
// agent on the real Docker Engine: one build, N tasks, each with its index; logs labelled per task;
// outputs per task; the run's exit code and cost added up from the tasks'.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cleanup, jsonEvents, makeContext, runCli, tmpDir } from './helpers';
import type { RunEvent } from '../../agent/protocol';
import { costOf } from '../../agent/cost/cost';
import { loadPricing } from '../../agent/cost/pricing';

const dirs: string[] = [];
after(() => cleanup(...dirs));
function ctx(): string {
  const d = makeContext({}, '', { uniq: true });
  dirs.push(d);
  return d;
}

/** Each task prints 50 numbered lines and one on stderr, leaves a file, and exits with a code of its own. */
const SCRIPT = 'i=1; while [ $i -le 50 ]; do echo "t$BYTENITE_TASK_INDEX/$BYTENITE_TASK_COUNT line $i"; i=$((i+1)); done; ' +
  'echo "err $BYTENITE_TASK_INDEX" >&2; echo "result $BYTENITE_TASK_INDEX" > $BYTENITE_OUTPUT_DIR/r.txt; ' +
  'case $BYTENITE_TASK_INDEX in 1) exit 3;; 2) exit 5;; *) exit 0;; esac';
const expectedLines = (t: number) => Array.from({ length: 50 }, (_, i) => `t${t}/4 line ${i + 1}\n`).join('');

test('4 tasks: each sees its index and count, logs per task complete, outputs per task, exit code and cost added up', async () => {
  const dir = ctx();
  const out = tmpDir();
  dirs.push(out);
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--parallel', '4', '--cpus', '0.5', '--memory', '64m', '--out', out, '--json', '--', 'sh', '-c', SCRIPT]);
  assert.equal(r.code, 3, 'the first non-zero task exit code by index (task 1: 3, task 2: 5)\n' + r.stderr);
  const events = jsonEvents(r.stdout).map((e) => e.event);
  assert.equal(events.filter((e) => e.kind === 'starting').length, 1, 'one build, one start for all tasks');
  const logs = events.filter((e): e is Extract<RunEvent, { kind: 'log' }> => e.kind === 'log' && e.stream !== 'build');
  assert.ok(logs.every((e) => e.task !== undefined), 'every log line of a fan-out run says its task');
  for (let t = 0; t < 4; t++) {
    const mine = (s: string) => logs.filter((e) => e.task === t && e.stream === s).map((e) => e.data).join('');
    assert.equal(mine('stdout'), expectedLines(t), `task ${t}'s stdout, complete and in order`);
    assert.equal(mine('stderr'), `err ${t}\n`);
    assert.ok(events.some((e) => e.kind === 'running' && e.task === t), `task ${t} reported running`);
    assert.equal(readFileSync(path.join(out, `task-${t}`, 'r.txt'), 'utf8'), `result ${t}\n`, `task ${t}'s output`);
  }
  const final = events.at(-1)!;
  assert.equal(final.kind, 'exited', JSON.stringify(final));
  if (final.kind !== 'exited') return;
  assert.equal(final.exitCode, 3);
  assert.deepEqual(final.tasks!.map((t) => [t.index, t.exitCode]), [[0, 0], [1, 3], [2, 5], [3, 0]]);
  assert.deepEqual(final.outputs.files, 4);
  // Each task is charged for its own running time; the run costs their sum.
  const { prices } = loadPricing();
  const hw = { cpus: 0.5, memoryMiB: 64 };
  for (const t of final.tasks!) {
    assert.ok(t.durationMs > 0);
    assert.equal(t.cost.total, costOf(hw, t.durationMs, prices, []).total, `task ${t.index} is charged for its own run time`);
  }
  const sum = final.tasks!.reduce((a, t) => a + t.cost.total, 0);
  assert.ok(Math.abs(final.cost.total - sum) < 1e-12, `run cost ${final.cost.total} = sum of tasks ${sum}`);
  assert.equal(final.cost.billedMs, final.tasks!.reduce((a, t) => a + t.cost.billedMs, 0));

  // bytenite attach replays the run the same way: every task labelled, or one task with --task.
  const runId = jsonEvents(r.stdout)[0].runId;
  const all = await runCli(['attach', runId]);
  assert.equal(all.code, 3, all.stderr);
  assert.equal(all.stdout.split('\n').filter((l) => l.startsWith('[task 3] ')).length, 50);
  const one = await runCli(['attach', runId, '--task', '1']);
  assert.equal(one.code, 3, one.stderr);
  assert.equal(one.stdout, expectedLines(1));
});

test('the terminal shows each line as [task N]; --task K shows one task; the summary has every task', async () => {
  const dir = ctx();
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--parallel', '4', '--cpus', '0.5', '--memory', '64m', '--', 'sh', '-c', SCRIPT]);
  assert.equal(r.code, 3, r.stderr);
  for (let t = 0; t < 4; t++) {
    const lines = r.stdout.split('\n').filter((l) => l.startsWith(`[task ${t}] `)).map((l) => l.slice(`[task ${t}] `.length) + '\n').join('');
    assert.equal(lines, expectedLines(t), `task ${t}'s lines, each labelled`);
    assert.match(r.stderr, new RegExp(`^\\[task ${t}\\] err ${t}$`, 'm'));
  }
  assert.equal(r.stdout.split('\n').filter(Boolean).length, 200, 'no unlabelled line');
  assert.match(r.stderr, /exited 3 .* 4 tasks: task 0 exit 0, [^;]+\$[^;]+; task 1 exit 3, [^;]+; task 2 exit 5, [^;]+; task 3 exit 0, /);

  const one = await runCli(['run', path.join(dir, 'Dockerfile'), '--parallel', '4', '--task', '2', '--cpus', '0.5', '--memory', '64m', '--', 'sh', '-c', SCRIPT]);
  assert.equal(one.code, 3, one.stderr);
  assert.equal(one.stdout, expectedLines(2), 'only task 2\'s output, as it printed it');

  const bad = await runCli(['run', path.join(dir, 'Dockerfile'), '--parallel', '4', '--task', '4']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--task 4: give a whole number from 0 to 3/);
});

test('each task is admitted by capacity: tasks that do not fit together wait their turn', async () => {
  const dir = ctx();
  // Each task asks for every vCPU of the machine: they can only run one after the other.
  const cpus = String(JSON.parse((await runCli(['hardware', '--json'])).stdout).host.cpus);
  const r = await runCli(['run', path.join(dir, 'Dockerfile'), '--parallel', '2', '--cpus', cpus, '--memory', '64m', '--json', '--',
    'sh', '-c', 'echo start $BYTENITE_TASK_INDEX; sleep 1; echo end $BYTENITE_TASK_INDEX']);
  assert.equal(r.code, 0, r.stderr);
  const events = jsonEvents(r.stdout).map((e) => e.event);
  assert.ok(events.some((e) => e.kind === 'queued' && e.task === 1), 'task 1 waited for task 0\'s room');
  const order = events.flatMap((e) => (e.kind === 'log' && e.stream === 'stdout' ? [e.data.trim()] : []));
  assert.deepEqual(order, ['start 0', 'end 0', 'start 1', 'end 1']);
  const final = events.at(-1)!;
  assert.ok(final.kind === 'exited' && final.tasks!.every((t) => t.exitCode === 0));
});

test('fan-out wall time against one task (for the README)', async () => {
  const dir = ctx();
  const cmd = ['--cpus', '0.5', '--memory', '64m', '--', 'sh', '-c', 'sleep 2; echo done'];
  await runCli(['run', path.join(dir, 'Dockerfile'), ...cmd]); // build: the timed runs are warm
  const time = async (extra: string[]) => {
    const t0 = Date.now();
    const r = await runCli(['run', path.join(dir, 'Dockerfile'), ...extra, ...cmd]);
    assert.equal(r.code, 0, r.stderr);
    return Date.now() - t0;
  };
  const one = await time([]);
  const four = await time(['--parallel', '4']);
  console.log(`# warm, 'sleep 2' per task, 0.5 vCPU each, CLI start to exit: 1 task ${one} ms; 4 tasks ${four} ms`);
  assert.ok(four < one * 2, `4 tasks ran side by side (${four} ms vs ${one} ms for one)`);
});
