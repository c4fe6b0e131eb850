import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CellResult, median, roundOrder, roundRatios } from '../../../bench/rounds.js';

test('roundOrder turns by one each round: every cell runs in every position once per as many rounds', () => {
  assert.deepEqual(roundOrder(3, 0), [0, 1, 2]);
  assert.deepEqual(roundOrder(3, 1), [1, 2, 0]);
  assert.deepEqual(roundOrder(3, 2), [2, 0, 1]);
  assert.deepEqual(roundOrder(3, 3), [0, 1, 2]);
  for (let pos = 0; pos < 4; pos++)
    assert.deepEqual([0, 1, 2, 3].map((r) => roundOrder(4, r)[pos]).sort(), [0, 1, 2, 3]);
});

test('roundRatios pairs the rounds of two cells; median takes the middle (the mean of two for an even count)', () => {
  const cell = (roundRps: number[]) => ({ roundRps }) as unknown as CellResult;
  assert.deepEqual(roundRatios(cell([10, 30, 8]), cell([20, 30, 10])), [0.5, 1, 0.8]);
  assert.equal(median([0.5, 1, 0.8]), 0.8);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
});
