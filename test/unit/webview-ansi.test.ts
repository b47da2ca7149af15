import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applySgr, isPlain, parseLine, stripAnsi, styleClasses, themeColorVar } from '../../webview/components/ansi';

test('plain text is one unstyled segment and keeps HTML-looking text as text', () => {
  assert.equal(isPlain('<b>&amp;</b>'), true);
  assert.deepEqual(parseLine('<script>alert(1)</script>', null).segments, [{ text: '<script>alert(1)</script>', style: null }]);
});

test('SGR colours and attributes become styled segments; reset returns to default', () => {
  const { segments, style } = parseLine('a\x1b[1;31mred\x1b[0m b', null);
  assert.deepEqual(segments, [
    { text: 'a', style: null },
    { text: 'red', style: { bold: true, fg: 1 } },
    { text: ' b', style: null },
  ]);
  assert.equal(style, null);
});

test('colour carries over to the next line of the stream, like a terminal', () => {
  const first = parseLine('\x1b[32mgreen starts', null);
  const second = parseLine('still green\x1b[39m', first.style);
  assert.deepEqual(second.segments, [{ text: 'still green', style: { fg: 2 } }]);
  assert.equal(second.style, null);
});

test('bright, 256-colour and true-colour values', () => {
  assert.deepEqual(applySgr(null, '91'), { fg: 9 });
  assert.deepEqual(applySgr(null, '38;5;196'), { fg: 'rgb(255,0,0)' });
  assert.deepEqual(applySgr(null, '38;5;244'), { fg: 'rgb(128,128,128)' });
  assert.deepEqual(applySgr(null, '48;5;3'), { bg: 3 });
  assert.deepEqual(applySgr(null, '38;2;10;20;30'), { fg: 'rgb(10,20,30)' });
  assert.deepEqual(applySgr(null, '38:2::10:20:30'), { fg: 'rgb(10,20,30)' });
  // Out-of-range values are ignored, and the parameters after them still apply.
  assert.deepEqual(applySgr(null, '38;2;300;0;0;1'), { bold: true });
  assert.deepEqual(applySgr({ bold: true, faint: true, fg: 1 }, '22'), { fg: 1 });
});

test('non-SGR escapes are dropped: cursor moves, erase, OSC titles, charset; OSC 8 links keep their text', () => {
  assert.equal(stripAnsi('\x1b[2K\x1b[1Gdone\x1b[K'), 'done');
  assert.equal(stripAnsi('\x1b]0;title\x07text'), 'text');
  assert.equal(stripAnsi('\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\'), 'link');
  assert.equal(stripAnsi('\x1b(Bplain'), 'plain');
  assert.equal(stripAnsi('cut off \x1b[3'), 'cut off ');
});

test('carriage return overwrites the line (progress bars); CRLF endings vanish', () => {
  assert.equal(stripAnsi('10%\r50%\r100%'), '100%');
  assert.equal(stripAnsi('windows line\r'), 'windows line');
  const { segments } = parseLine('\x1b[33m10%\r\x1b[32m100%', null);
  assert.deepEqual(segments, [{ text: '100%', style: { fg: 2 } }]);
});

test('backspace and other control characters', () => {
  assert.equal(stripAnsi('abc\bd'), 'abd');
  assert.equal(stripAnsi('a\x00b\x07c\td'), 'abc\td');
});

test('classes and theme variables for a style', () => {
  assert.deepEqual(styleClasses({ fg: 9, bg: 0, bold: true, underline: true }), ['ansi-fg-9', 'ansi-bg-0', 'ansi-bold', 'ansi-underline']);
  assert.deepEqual(styleClasses({ fg: 'rgb(1,2,3)' }), []);
  assert.equal(themeColorVar(1), '--vscode-terminal-ansiRed');
  assert.equal(themeColorVar(12), '--vscode-terminal-ansiBrightBlue');
});
