import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialResize } from '../../agent/interactive/serialResize';

/** An engine whose first resize call answers last: the order two concurrent calls would land in. */
function slowFirstEngine() {
  const applied: string[] = [];
  let calls = 0;
  let inFlight = 0;
  let most = 0;
  const apply = async (cols: number, rows: number) => {
    inFlight++;
    most = Math.max(most, inFlight);
    const delay = calls++ === 0 ? 30 : 1;
    await new Promise((r) => setTimeout(r, delay));
    applied.push(`${cols}x${rows}`);
    inFlight--;
  };
  return { applied, apply, most: () => most };
}

test('stty cols 120 rows 40 (two SIGWINCHes): the terminal ends at the newest size, one engine call at a time', async () => {
  const engine = slowFirstEngine();
  const resize = serialResize(engine.apply);
  await Promise.all([resize(120, 30), resize(120, 40)]);
  assert.equal(engine.applied.at(-1), '120x40');
  assert.equal(engine.most(), 1);
});

test('sizes asked during a call collapse into the newest', async () => {
  const engine = slowFirstEngine();
  const resize = serialResize(engine.apply);
  await Promise.all([resize(80, 24), resize(90, 25), resize(100, 26), resize(110, 27)]);
  assert.deepEqual(engine.applied, ['80x24', '110x27']);
});

test('a failed resize is reported and does not keep the next one from going', async () => {
  const applied: string[] = [];
  let first = true;
  const resize = serialResize(async (cols, rows) => {
    if (first) {
      first = false;
      await new Promise((r) => setTimeout(r, 10));
      throw new Error('no such exec');
    }
    applied.push(`${cols}x${rows}`);
  });
  const results = await Promise.allSettled([resize(80, 24), resize(100, 30)]);
  assert.equal(results[0].status, 'rejected');
  assert.deepEqual(applied, ['100x30']);
  await resize(120, 40);
  assert.deepEqual(applied, ['100x30', '120x40']);
});
