import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { CounterCells, HistogramCells } from '../../../core/metric-cells.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];

function histograms(): { direct: Histogram<'route'>; viaCells: Histogram<'route'>; cells: HistogramCells<'route'> } {
  const registry = new Registry();
  const direct = new Histogram({
    name: 'direct',
    help: 'h',
    labelNames: ['route'],
    buckets: BOUNDS,
    registers: [registry],
  });
  let cells: HistogramCells<'route'> | undefined;
  const viaCells = new Histogram({
    name: 'cells',
    help: 'h',
    labelNames: ['route'],
    buckets: BOUNDS,
    registers: [registry],
    collect: () => cells?.flush(),
  });
  cells = new HistogramCells(viaCells);
  return { direct, viaCells, cells };
}

const values = async (h: Histogram<'route'>) =>
  (await h.get()).values.map((v) => ({ ...v, metricName: v.metricName?.replace(/^(direct|cells)/, 'm') }));

test('a histogram read through its cells reads as if every value had been observed directly', async () => {
  const { direct, viaCells, cells } = histograms();
  const observed: [string, number][] = [
    ['a', 0.0005],
    ['a', 0.001], // on a bound: that bucket, as prom-client counts it
    ['a', 0.05],
    ['b', 3], // above the largest bound: only +Inf, sum and count
    ['a', 0.2],
  ];
  for (const [route, v] of observed) {
    direct.labels(route).observe(v);
    cells.cell({ route }).observe(v);
  }
  assert.deepEqual(await values(viaCells), await values(direct));
  // Read twice: what was merged is not merged again; new observations add to it.
  assert.deepEqual(await values(viaCells), await values(direct));
  direct.labels('a').observe(0.02);
  cells.cell({ route: 'a' }).observe(0.02);
  assert.deepEqual(await values(viaCells), await values(direct));
});

test('a histogram reset with its cells discarded forgets the pending observations', async () => {
  const { viaCells, cells } = histograms();
  cells.cell({ route: 'a' }).observe(0.5);
  viaCells.reset();
  cells.discard();
  assert.deepEqual((await viaCells.get()).values, []);
  cells.cell({ route: 'a' }).observe(0.5);
  viaCells.reset(); // the series is gone; the next read creates it again
  const count = (await viaCells.get()).values.find((v) => v.metricName === 'cells_count');
  assert.equal(count?.value, 1);
});

test('a non-finite value is refused as prom-client refuses it', () => {
  const { cells } = histograms();
  assert.throws(() => cells.cell({ route: 'a' }).observe(Number.NaN), TypeError);
});

test('a counter read through its cells adds every increment once', async () => {
  const registry = new Registry();
  let cells: CounterCells<'route' | 'outcome'> | undefined;
  const counter = new Counter({
    name: 'c',
    help: 'h',
    labelNames: ['route', 'outcome'],
    registers: [registry],
    collect: () => cells?.flush(),
  });
  cells = new CounterCells(counter);
  const met = cells.cell({ route: 'a', outcome: 'met' });
  assert.equal(cells.cell({ route: 'a', outcome: 'met' }), met);
  met.inc();
  met.inc(2);
  counter.labels('a', 'met').inc(10); // direct increments and cells add up
  cells.cell({ route: 'a', outcome: 'missed' }).inc();
  const read = async () => Object.fromEntries((await counter.get()).values.map((v) => [v.labels.outcome, v.value]));
  assert.deepEqual(await read(), { met: 13, missed: 1 });
  assert.deepEqual(await read(), { met: 13, missed: 1 });
  cells.discard();
  assert.deepEqual(await read(), { met: 13, missed: 1 });
});
