import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exponential, mulberry32, standardNormal } from '../../../core/prng.js';

test('mulberry32 keeps its stream: pinned first values (schedules and simulations replay from seeds)', () => {
  const r = mulberry32(7);
  assert.deepEqual([r(), r(), r()], [0.011704753153026104, 0.06195825757458806, 0.97690763277933]);
  const z = mulberry32(0);
  assert.deepEqual([z(), z()], [0.26642920868471265, 0.0003297457005828619]);
});

test('mulberry32 is deterministic per seed, seeds are taken modulo 2^32, another seed gives another stream', () => {
  const a = mulberry32(7);
  const b = mulberry32(7);
  const wrapped = mulberry32(2 ** 32 + 7);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    Array.from({ length: 1000 }, () => b()),
    xs,
  );
  assert.equal(wrapped(), xs[0]);
  assert.notEqual(mulberry32(8)(), xs[0]);
});

test('mulberry32 is uniform in [0, 1): range, mean and every tenth of the interval filled evenly', () => {
  const r = mulberry32(1);
  const n = 100_000;
  const bins = new Array<number>(10).fill(0);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1, `${x} in [0, 1)`);
    sum += x;
    bins[Math.floor(x * 10)] = (bins[Math.floor(x * 10)] ?? 0) + 1;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.005, `mean ${sum / n}`);
  // Each bin holds n/10 = 10000 +- 95 (one sigma); 5 sigma apart is a broken generator.
  for (const c of bins) assert.ok(Math.abs(c - n / 10) < 475, `bins ${bins}`);
});

test('exponential samples are positive with the requested mean', () => {
  const r = mulberry32(1);
  const n = 50_000;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = exponential(r, 5);
    assert.ok(x >= 0 && Number.isFinite(x));
    sum += x;
  }
  assert.ok(Math.abs(sum / n - 5) < 0.1, `mean ${sum / n}`);
});

test('standardNormal: finite, mean 0 and variance 1, deterministic for a seed', () => {
  const draw = (seed: number, n: number) => {
    const r = mulberry32(seed);
    return Array.from({ length: n }, () => standardNormal(r));
  };
  const xs = draw(3, 50_000);
  assert.ok(xs.every(Number.isFinite));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.03, `variance ${variance}`);
  assert.deepEqual(draw(3, 5), xs.slice(0, 5));
});
