// Fixed (static, aimd) routes: reported with a prediction, never moved, their knobs kept.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from '../../../../policies/engine/index.js';
import { rate, routeInput, settled, snapshot } from './fixtures.js';

describe('fixed routes', () => {
  test('a fixed policy is reported as is, with a prediction, and never moved', () => {
    const r = decide(
      snapshot([
        routeInput({ policy: { kind: 'fixed', variant: 'large', maxBatch: 4, maxQueueDelayMs: 2 }, rate: rate(5000) }),
      ]),
    );
    const d = r.decisions.get('r');
    assert.deepEqual(d?.variants, [{ variant: 'large', share: 1 }]);
    assert.equal(d?.maxBatch, 4);
    assert.equal(d?.admissionRps, Number.POSITIVE_INFINITY);
    assert.equal(d?.reason, 'fixed by the route policy');
  });

  test('a fixed policy keeps its batch knobs on a variant an adaptive route also uses (the smaller limit wins)', () => {
    const r = decide(
      snapshot([
        routeInput({ rate: rate(10), state: settled(3) }),
        routeInput({
          name: 'pinned',
          policy: { kind: 'fixed', variant: 'large', maxBatch: 2, maxQueueDelayMs: 0 },
          rate: rate(10),
        }),
      ]),
    );
    assert.equal(r.knobs.get('m/large')?.maxBatch, 2);
  });
});
