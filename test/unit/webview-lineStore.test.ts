import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineStore, lineSegments } from '../../webview/components/lineStore';

test('chunks split into lines; a partial line is extended by the next chunk of its stream', () => {
  const s = new LineStore();
  assert.deepEqual(s.append('stdout', 'one\ntw', 1), { appended: 2, reopened: false });
  assert.deepEqual(s.append('stdout', 'o\nthree\n', 2), { appended: 1, reopened: true });
  assert.deepEqual(s.lines.map((l) => l.text), ['one', 'two', 'three']);
  assert.equal(s.lines[1].time, 1, 'a line keeps the time it started');
});

test('another stream does not continue a partial line', () => {
  const s = new LineStore();
  s.append('stdout', 'progress', 1);
  s.append('stderr', 'error!\n', 2);
  s.append('stdout', ' done\n', 3);
  assert.deepEqual(s.lines.map((l) => [l.stream, l.text]), [['stdout', 'progress'], ['stderr', 'error!'], ['stdout', ' done']]);
});

test('empty lines are kept; a trailing newline adds no line', () => {
  const s = new LineStore();
  s.append('stdout', 'a\n\nb\n', 1);
  assert.deepEqual(s.lines.map((l) => l.text), ['a', '', 'b']);
  s.append('stdout', '', 2);
  assert.equal(s.length, 3);
});

test('ANSI state carries per stream across lines and chunks', () => {
  const s = new LineStore();
  s.append('stdout', '\x1b[31mred\n', 1);
  s.append('stderr', 'plain\n', 1);
  s.append('stdout', 'still red\x1b[0m normal\n', 2);
  assert.deepEqual(lineSegments(s.lines[0]), [{ text: 'red', style: { fg: 1 } }]);
  assert.deepEqual(lineSegments(s.lines[1]), [{ text: 'plain', style: null }]);
  assert.deepEqual(lineSegments(s.lines[2]), [{ text: 'still red', style: { fg: 1 } }, { text: ' normal', style: null }]);
});

test('an escape split across two chunks of one line still parses', () => {
  const s = new LineStore();
  s.append('stdout', 'a\x1b[3', 1);
  s.append('stdout', '2mgreen\n', 2);
  assert.deepEqual(lineSegments(s.lines[0]), [{ text: 'a', style: null }, { text: 'green', style: { fg: 2 } }]);
});

test('past the bound the oldest lines go in blocks, and numbering continues', () => {
  const s = new LineStore(100, 10);
  for (let i = 1; i <= 105; i++) s.append('stdout', `line ${i}\n`, i);
  assert.equal(s.trim(), 15);
  assert.equal(s.length, 90);
  assert.equal(s.dropped, 15);
  assert.equal(s.lines[0].text, 'line 16');
  assert.equal(s.trim(), 0);
});

test('a snapshot keeps the last lines and the open line, and restores into a working store', () => {
  const s = new LineStore();
  for (let i = 1; i <= 10; i++) s.append('stdout', `line ${i}\n`, i);
  s.append('stdout', '\x1b[34mpart', 11);
  const snap = s.snapshot(5);
  assert.equal(snap.lines.length, 5);
  assert.equal(snap.dropped, 6);
  const r = LineStore.restore(JSON.parse(JSON.stringify(snap)));
  r.append('stdout', 'ial\n', 12);
  assert.equal(r.lines[r.length - 1].text, 'partial');
  assert.deepEqual(lineSegments(r.lines[r.length - 1]), [{ text: 'partial', style: { fg: 4 } }]);
});
