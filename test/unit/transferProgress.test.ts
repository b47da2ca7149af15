// The engine's pull of the context as upload progress: read at a pace, told only when it changed, and once
// more at the end of the build whatever it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TransferProgress, type Transfer } from '../../agent/build/transferProgress';

test('told when the figures change, not before the engine asks, and finally once more', async () => {
  let now: Transfer = { bytesDone: 0, bytesTotal: 0 };
  const told: Transfer[] = [];
  const p = new TransferProgress(() => now, (t) => told.push(t), 5);
  p.start();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(told, [], 'nothing asked for yet: nothing told');
  now = { bytesDone: 0, bytesTotal: 300 };
  await new Promise((r) => setTimeout(r, 20));
  now = { bytesDone: 300, bytesTotal: 300 };
  await new Promise((r) => setTimeout(r, 20));
  p.tick(true);
  assert.deepEqual(told, [{ bytesDone: 0, bytesTotal: 300 }, { bytesDone: 300, bytesTotal: 300 }, { bytesDone: 300, bytesTotal: 300 }]);
  now = { bytesDone: 400, bytesTotal: 400 };
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(told.length, 3, 'stopped after the final tick');
});

test('a build the engine needed nothing for still ends with its 0 of 0', () => {
  const told: Transfer[] = [];
  const p = new TransferProgress(() => ({ bytesDone: 0, bytesTotal: 0 }), (t) => told.push(t));
  p.start();
  p.tick(true);
  assert.deepEqual(told, [{ bytesDone: 0, bytesTotal: 0 }]);
});
