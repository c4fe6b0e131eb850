// A rollout's shadow work on a variant's replicas: the engine plans with it (utilisation, capacity) and names it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from '../../../../policies/engine/index.js';
import { capacityRps, plan, type VariantModel } from '../../../../policies/latency-model.js';
import { deserializeSnapshot, serializeSnapshot } from '../../../../policies/snapshot-codec.js';
import { FAMILY, rate, routeInput, settled, snapshot } from './fixtures.js';

/** The four-rung family with `large` running this share of its batches again (a rollout's shadow). */
function withShadow(share: number) {
  const family = FAMILY.map((v) => (v.name === 'large' && share > 0 ? { ...v, extraWorkShare: share } : v));
  return new Map([['m', new Map(family.map((v) => [v.name, v]))]]);
}

function decideAt(rps: number, share: number) {
  const s = snapshot([routeInput({ rate: rate(rps), state: settled(3) })], { variants: withShadow(share) });
  const d = decide(s).decisions.get('r');
  assert.ok(d !== undefined);
  return d;
}

const LARGE = FAMILY[3] as VariantModel;
const CTX = { slots: 1, otherUtilisation: 0, burstiness: 1, overheadMs: 0.5, correction: 1, maxUtilisation: 0.8 };

describe('shadow work in the engine', () => {
  const table = [
    { rps: 400, share: 0, largeShare: 1, named: false },
    { rps: 400, share: 0.05, largeShare: 1, named: false },
    { rps: 400, share: 0.5, largeShare: 0.75, named: true },
    { rps: 500, share: 0, largeShare: 1, named: false },
    { rps: 500, share: 0.5, largeShare: 0.5, named: true },
  ];
  for (const row of table)
    test(`${row.rps} req/s with ${row.share * 100}% shadow on large: ${row.largeShare * 100}% large`, () => {
      const d = decideAt(row.rps, row.share);
      const large = d.variants.find((v) => v.variant === 'large')?.share ?? 0;
      assert.equal(large, row.largeShare, d.reason);
      assert.equal(d.reason.includes('counting shadow work'), row.named, d.reason);
      if (row.named) assert.match(d.reason, /m\/large shadow 50%/);
    });

  test('a plan counts the extra work in its utilisation, not in the batch that forms', () => {
    const alone = plan(LARGE, 300, { ...CTX, budgetMs: 22.5 });
    const shadowed = plan({ ...LARGE, extraWorkShare: 0.5 }, 300, { ...CTX, budgetMs: 22.5 });
    assert.equal(shadowed.batch, alone.batch);
    assert.ok(Math.abs(shadowed.utilisation - 1.5 * alone.utilisation) < 1e-12);
    assert.ok(Math.abs(shadowed.extraUtilisation - 0.5 * alone.utilisation) < 1e-12);
    assert.equal(alone.extraUtilisation, 0);
    assert.ok(shadowed.predictedP99Ms > alone.predictedP99Ms);
  });

  test('capacity at the SLO shrinks by the extra work', () => {
    const alone = capacityRps(LARGE, 8, CTX);
    const shadowed = capacityRps({ ...LARGE, extraWorkShare: 0.5 }, 8, CTX);
    assert.ok(Math.abs(shadowed - alone / 1.5) < 1e-9, `${alone} vs ${shadowed}`);
    assert.ok(decideAt(300, 0.5).inputs.capacityRps < decideAt(300, 0).inputs.capacityRps);
  });

  test('the shadow share survives a recorded snapshot', () => {
    const s = snapshot([routeInput({ rate: rate(400), state: settled(3) })], { variants: withShadow(0.5) });
    const back = deserializeSnapshot(JSON.parse(JSON.stringify(serializeSnapshot(s))));
    assert.equal(back.variants.get('m')?.get('large')?.extraWorkShare, 0.5);
    assert.equal(back.variants.get('m')?.get('cnn')?.extraWorkShare, undefined);
    assert.deepEqual(decide(back).decisions.get('r')?.variants, decide(s).decisions.get('r')?.variants);
  });
});
