import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_STREAMS, compileFilter, splitByRanges } from '../../webview/components/logFilter';

test('no query and every stream: the filter is a pass-through', () => {
  const f = compileFilter({ query: '', streams: ALL_STREAMS });
  assert.equal(f.all, true);
  assert.equal(f.test('x', 'build'), true);
});

test('a stream choice hides the other streams', () => {
  const f = compileFilter({ query: '', streams: new Set(['stderr']) });
  assert.equal(f.all, false);
  assert.equal(f.test('x', 'stderr'), true);
  assert.equal(f.test('x', 'stdout'), false);
});

test('text queries match case-insensitively and give every match range', () => {
  const f = compileFilter({ query: 'Err', streams: ALL_STREAMS });
  assert.equal(f.test('an ERROR here', 'stdout'), true);
  assert.equal(f.test('fine', 'stdout'), false);
  assert.deepEqual(f.ranges('err, ERR'), [[0, 3], [5, 8]]);
});

test('regex queries in slashes; a bad one reports an error and matches nothing', () => {
  const f = compileFilter({ query: '/line \\d+$/', streams: ALL_STREAMS });
  assert.equal(f.test('line 42', 'stdout'), true);
  assert.equal(f.test('line 42 more', 'stdout'), false);
  assert.equal(f.test('line 7', 'stdout'), true, 'no lastIndex left over between lines');
  assert.deepEqual(f.ranges('line 42'), [[0, 7]]);
  const bad = compileFilter({ query: '/(/', streams: ALL_STREAMS });
  assert.match(bad.error ?? '', /Not a valid regular expression/);
  assert.equal(bad.test('(', 'stdout'), false);
});

test('a regex that can match empty text does not loop', () => {
  const f = compileFilter({ query: '/x*/', streams: ALL_STREAMS });
  assert.deepEqual(f.ranges('axxb'), [[1, 3]]);
});

test('match ranges split styled pieces so highlights lie over colours', () => {
  const pieces = [{ text: 'hello ', style: null }, { text: 'world', style: { fg: 1 } }];
  assert.deepEqual(splitByRanges(pieces, [[4, 8]]), [
    { text: 'hell', style: null, mark: false },
    { text: 'o ', style: null, mark: true },
    { text: 'wo', style: { fg: 1 }, mark: true },
    { text: 'rld', style: { fg: 1 }, mark: false },
  ]);
  assert.deepEqual(splitByRanges(pieces, []).map((p) => p.text).join(''), 'hello world');
});
