import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineIndex, lowerBound } from '../../webview/components/lineIndex';
import { LineStore } from '../../webview/components/lineStore';
import { ALL_STREAMS, compileFilter } from '../../webview/components/logFilter';

const filter = (query: string) => compileFilter({ query, streams: ALL_STREAMS });

test('a pass-through index keeps no list and maps positions straight to lines', () => {
  const s = new LineStore();
  s.append('stdout', 'a\nb\n', 1);
  const i = new LineIndex(filter(''), s);
  assert.equal(i.list, null);
  assert.equal(i.count(s), 2);
  assert.equal(i.at(s, 1), 1);
  assert.equal(i.at(s, 2), undefined);
});

test('new lines and a line that grows are re-tested; dropped lines leave the index', () => {
  const s = new LineStore(6, 2);
  const i = new LineIndex(filter('err'), s);
  assert.equal(i.update(s, s.append('stdout', 'ok 1\nerr 2\npartial', 1)), 1);
  assert.deepEqual(i.list, [1]);
  assert.equal(i.update(s, s.append('stdout', ' err\n', 2)), 1, 'the open line now matches');
  assert.deepEqual(i.list, [1, 2]);
  i.update(s, s.append('stdout', 'x\nerr 4\nx\nx\n', 3));
  assert.deepEqual(i.list, [1, 2, 4]);
  s.trim(); // 7 lines, bound 6, block 2: the first 3 go
  i.trim(s);
  assert.deepEqual(i.list, [4]);
  assert.equal(i.positionOf(s, 4), 0);
  assert.equal(s.lines[i.at(s, 0)! - s.dropped].text, 'err 4');
});

test('lowerBound finds the first element at or above', () => {
  assert.equal(lowerBound([1, 3, 5], 0), 0);
  assert.equal(lowerBound([1, 3, 5], 3), 1);
  assert.equal(lowerBound([1, 3, 5], 4), 2);
  assert.equal(lowerBound([1, 3, 5], 6), 3);
});
