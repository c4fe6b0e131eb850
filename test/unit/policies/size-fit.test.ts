// Per-request choice by size (pure): a request that fits the mix's variant stays there; one that does not goes to
// the most accurate eligible variant that still makes its deadline at its own size and queue, not the fastest.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type SizeFitQuery, variantForSize } from '../../../policies/size-fit.js';

/** Service time per row (ms) and a fixed cost per batch: large is slow per row, cnn cheap per row. */
const PER_ROW: Record<string, [number, number]> = {
  large: [1.4, 1],
  cnn: [0.04, 0.3],
  medium: [0.3, 0.3],
  tiny: [0.01, 0.1],
};
const ELIGIBLE = ['large', 'cnn', 'medium', 'tiny'];

function query(rows: number, o: Partial<SizeFitQuery> = {}): SizeFitQuery {
  return {
    rows,
    nowMs: 0,
    deadlineAtMs: 25,
    overheadMs: 1,
    backlogMs: () => 0,
    serviceMs: (v, n) => {
      const [perRow, fixed] = PER_ROW[v] ?? [Number.POSITIVE_INFINITY, 0];
      return fixed + perRow * n;
    },
    ...o,
  };
}

const cases = [
  { name: '1 row fits the mix variant', rows: 1, want: 'large' },
  { name: '16 rows still fit', rows: 16, want: 'large' },
  { name: '32 rows go to the best that fits, not the fastest', rows: 32, want: 'cnn' },
  { name: '64 rows too', rows: 64, want: 'cnn' },
  {
    name: 'a queue ahead counts: 1 row behind 22 ms of EDF work goes to the best that still fits',
    rows: 1,
    backlog: 22,
    want: 'cnn',
  },
  { name: 'nothing fits: the fastest at this size', rows: 64, backlog: 40, want: 'tiny' },
  {
    name: 'a stall: 25 ms of overhead make every variant late, the best that fits without it is kept',
    rows: 64,
    overhead: 25,
    want: 'cnn',
  },
  {
    name: 'a stall, and the mix variant fits without it: kept',
    rows: 8,
    overhead: 25,
    want: 'large',
  },
];
for (const c of cases)
  test(c.name, () => {
    const backlog = c.backlog ?? 0;
    assert.equal(
      variantForSize('large', () => ELIGIBLE, query(c.rows, { backlogMs: () => backlog, overheadMs: c.overhead ?? 1 })),
      c.want,
    );
  });

test('the eligible list is only built when the mix variant does not fit', () => {
  let built = 0;
  const eligible = () => {
    built++;
    return ELIGIBLE;
  };
  variantForSize('large', eligible, query(1));
  assert.equal(built, 0);
  variantForSize('large', eligible, query(64));
  assert.equal(built, 1);
});
