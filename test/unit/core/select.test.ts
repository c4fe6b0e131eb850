import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '../../../core/prng.js';
import { selectKth } from '../../../core/select.js';

function sortedCopy(a: Float64Array, n: number): Float64Array {
  return a.slice(0, n).sort();
}

test('selectKth gives the k-th smallest for every k, on random, duplicated, sorted and reversed input', () => {
  const rand = mulberry32(7);
  const inputs: Float64Array[] = [
    Float64Array.from({ length: 513 }, () => rand()),
    Float64Array.from({ length: 200 }, () => Math.floor(rand() * 5)),
    Float64Array.from({ length: 100 }, (_, i) => i),
    Float64Array.from({ length: 100 }, (_, i) => 100 - i),
    Float64Array.from({ length: 64 }, () => 3),
    Float64Array.of(2),
  ];
  for (const input of inputs) {
    const want = sortedCopy(input, input.length);
    for (let k = 0; k < input.length; k++) {
      const a = input.slice();
      assert.equal(selectKth(a, a.length, k), want[k], `k=${k} of ${input.length}`);
      assert.deepEqual(sortedCopy(a, a.length), want, 'the values are only reordered');
    }
  }
});

test('selectKth looks only at the first n values, and repeated selections on one array stay right', () => {
  const a = Float64Array.of(9, 1, 8, 2, 7, -100, -200);
  assert.equal(selectKth(a, 5, 0), 1);
  assert.equal(selectKth(a, 5, 4), 9);
  assert.equal(selectKth(a, 5, 2), 7);
  assert.deepEqual([...a.subarray(5)], [-100, -200]);
});

test('selectKth refuses a k outside the array', () => {
  const a = Float64Array.of(1, 2, 3);
  assert.throws(() => selectKth(a, 3, 3), RangeError);
  assert.throws(() => selectKth(a, 3, -1), RangeError);
  assert.throws(() => selectKth(a, 4, 0), RangeError);
  assert.throws(() => selectKth(a, 0, 0), RangeError);
});
