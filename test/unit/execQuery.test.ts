import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseExecQuery } from '../../agent/interactive/execServer';

const cmd = (a: unknown) => Buffer.from(JSON.stringify(a)).toString('base64url');

test('an exec query: the command as a JSON array, the terminal and its size, checked', () => {
  assert.deepEqual(parseExecQuery(`cmd=${cmd(['sh', '-c', 'echo hi'])}&tty=1&stdin=1&cols=120&rows=40&task=2`),
    { cmd: ['sh', '-c', 'echo hi'], tty: true, stdin: true, cols: 120, rows: 40, task: 2 });
  assert.deepEqual(parseExecQuery(`cmd=${cmd(['true'])}`), { cmd: ['true'], tty: false, stdin: false, cols: undefined, rows: undefined, task: 0 });
  assert.match(parseExecQuery('cmd=notjson') as string, /JSON array/);
  assert.match(parseExecQuery(`cmd=${cmd([])}`) as string, /1 to 256 strings/);
  assert.match(parseExecQuery(`cmd=${cmd(['', 'x'])}`) as string, /the program first/);
  assert.match(parseExecQuery(`cmd=${cmd([1])}`) as string, /strings/);
  assert.match(parseExecQuery(`cmd=${cmd(['sh'])}&cols=0&rows=10`) as string, /cols must be/);
  assert.match(parseExecQuery(`cmd=${cmd(['sh'])}&task=-1`) as string, /task/);
});
