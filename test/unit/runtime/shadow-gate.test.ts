// The shadow gate: copies run while few live arrivals are expected during one, stop near saturation, and still run
// once per floor interval.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ShadowGate } from '../../../runtime/shadow-gate.js';

/** Arrivals every `gapMs` from `fromMs` to `toMs`. */
function arrive(g: ShadowGate, fromMs: number, toMs: number, gapMs: number): void {
  for (let t = fromMs; t < toMs; t += gapMs) g.noteArrival(t);
}

describe('ShadowGate', () => {
  test('the rate is the last second of arrivals, forgotten bucket by bucket', () => {
    const g = new ShadowGate();
    arrive(g, 0, 1000, 1); // 1 per ms
    assert.equal(g.ratePerMs(999), 1);
    assert.equal(g.ratePerMs(1499), 0.5); // five of the ten buckets have aged out
    assert.equal(g.ratePerMs(5000), 0);
  });

  test('at light load every copy runs', () => {
    const g = new ShadowGate({ maxArrivals: 0.1, floorMs: 250 });
    arrive(g, 0, 1000, 10); // 0.1 per ms: 0.05 arrivals expected during a 0.5 ms run
    assert.deepEqual(
      [1000, 1001, 1002].map((t) => g.admits(t, 0.5)),
      [true, true, true],
    );
  });

  test('near saturation a copy runs once per floor interval, not more', () => {
    const g = new ShadowGate({ maxArrivals: 0.1, floorMs: 250 });
    arrive(g, 0, 1000, 0.5); // 2 per ms: 1 arrival expected during a 0.5 ms run
    const t = 999;
    assert.equal(g.admits(t, 0.5), true, 'the first in a floor interval');
    assert.equal(g.admits(t + 1, 0.5), false);
    assert.equal(g.admits(t + 249, 0.5), false);
    arrive(g, 1000, 1249, 0.5);
    assert.equal(g.admits(t + 250, 0.5), true);
    assert.equal(g.admits(t + 251, 0.5), false);
  });

  test('a cheaper copy fits where a dearer one does not', () => {
    const g = new ShadowGate({ maxArrivals: 0.1, floorMs: 250 });
    arrive(g, 0, 1000, 2); // 0.5 per ms
    assert.equal(g.admits(999, 0.1), true); // 0.05 expected
    assert.equal(g.admits(1000, 1), false); // 0.5 expected, and one ran 1 ms ago
  });
});
