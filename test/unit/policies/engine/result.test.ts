// The result: probes for a route nothing can serve, batch knobs per variant, pressure.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from '../../../../policies/engine/index.js';
import { rate, routeInput, settled, snapshot } from './fixtures.js';

describe('result', () => {
  test('nothing can meet the SLO: shed all but a probe', () => {
    const d = decide(snapshot([routeInput({ rate: rate(500), slo: { p99Ms: 0.1 } })])).decisions.get('r');
    assert.ok((d?.admissionRps ?? 0) > 0 && (d?.admissionRps ?? 1000) <= 0.05 * 500 + 2);
    assert.match(d?.reason ?? '', /shedding all but a probe/);
  });

  test('a route nothing can serve is probed on its fastest variant and puts no one else under pressure', () => {
    const r = decide(
      snapshot([
        routeInput({ name: 'impossible', rate: rate(500), slo: { p99Ms: 0.1 } }),
        routeInput({ name: 'ok', rate: rate(50), state: settled(3) }),
      ]),
    );
    assert.deepEqual(r.decisions.get('impossible')?.variants, [{ variant: 'tiny', share: 1 }]);
    assert.equal(r.underPressure, false);
    const loaded = decide(
      snapshot([
        routeInput({ name: 'gold', rate: rate(60_000), allowed: ['cnn'], state: settled(0, { ladder: ['cnn'] }) }),
      ]),
    );
    assert.equal(loaded.underPressure, true, 'capacity shedding is pressure');
  });

  test('knobs: a shared variant expects the sum of the arrivals its routes send it', () => {
    const r = decide(
      snapshot([
        routeInput({ rate: rate(100), state: settled(0), objective: 'min-cost' }),
        routeInput({ name: 'r2', rate: rate(300), state: settled(0), objective: 'min-cost' }),
      ]),
    );
    const lowest = r.decisions.get('r')?.variants[0]?.variant ?? '';
    assert.equal(r.decisions.get('r2')?.variants[0]?.variant, lowest);
    assert.ok(Math.abs((r.knobs.get(`m/${lowest}`)?.arrivalRps ?? 0) - 400) < 1e-6);
  });

  const waits = [
    { name: 'its own arrivals make the wait apply: the prediction includes it', rps: 2000, included: true },
    { name: 'no partner expected within the wait: the prediction leaves it out', rps: 10, included: false },
  ];
  for (const c of waits)
    test(`a min-cost route's queue delay: ${c.name}`, () => {
      const d = decide(
        snapshot([routeInput({ rate: rate(c.rps), state: settled(0), objective: 'min-cost' })]),
      ).decisions.get('r');
      assert.ok(d !== undefined && d.maxQueueDelayMs > 0, `a delay is set (${d?.maxQueueDelayMs})`);
      assert.equal(d.predictedP99Ms > d.maxQueueDelayMs, c.included, `predicted ${d.predictedP99Ms}`);
    });

  test('knobs: each variant gets the smallest batch limit the routes using it need', () => {
    const r = decide(
      snapshot([
        routeInput({ rate: rate(100), state: settled(3) }),
        routeInput({ name: 'r2', rate: rate(100), slo: { p99Ms: 8 }, state: settled(3) }),
      ]),
    );
    const k = r.knobs.get('m/large');
    assert.ok(k !== undefined);
    assert.ok(
      k.maxBatch <= (r.decisions.get('r2')?.maxBatch ?? 0) ||
        !r.decisions.get('r2')?.variants.some((v) => v.variant === 'large'),
    );
  });
});
