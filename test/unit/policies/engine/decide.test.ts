// decide(snapshot) as a pure function: hand-built snapshots in, decisions and next state out.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, type EngineSnapshot } from '../../../../policies/engine/index.js';
import { mix, rate, routeInput, settled, snapshot } from './fixtures.js';

describe('decide', () => {
  const cases: { name: string; snap: EngineSnapshot; want: Record<string, number> }[] = [
    {
      name: 'low load: the most accurate variant',
      snap: snapshot([routeInput({ rate: rate(100) })]),
      want: { large: 1 },
    },
    {
      name: 'load beyond large: a mix of the two best rungs',
      snap: snapshot([routeInput({ rate: rate(800) })]),
      want: { cnn: -1, large: -1 },
    },
    {
      name: 'far beyond: the cheaper rung alone',
      snap: snapshot([routeInput({ rate: rate(5000) })]),
      want: { cnn: 1 },
    },
    {
      name: 'minAccuracy excludes variants below it',
      snap: snapshot([routeInput({ rate: rate(100), slo: { p99Ms: 25, minAccuracy: 0.95 }, objective: 'min-cost' })]),
      want: { cnn: 1 },
    },
    {
      name: 'min-cost: the cheapest variant that holds the SLO',
      snap: snapshot([routeInput({ rate: rate(100), objective: 'min-cost' })]),
      want: { tiny: 1 },
    },
    {
      name: 'a tight SLO rules out a slow variant even at low load',
      snap: snapshot([routeInput({ rate: rate(10), slo: { p99Ms: 3 } })]),
      want: { cnn: 1 },
    },
  ];
  for (const c of cases) {
    test(`first decision: ${c.name}`, () => {
      const got = mix(c.snap);
      for (const [v, share] of Object.entries(c.want)) {
        if (share < 0) assert.ok((got[v] ?? 0) > 0 && (got[v] ?? 0) < 1, `${v} in a mix: ${JSON.stringify(got)}`);
        else assert.equal(got[v], share, JSON.stringify(got));
      }
    });
  }

  test('maxCostPerMillion caps the average cost: the expensive variant only in a share the budget affords', () => {
    const d = decide(
      snapshot([routeInput({ rate: rate(50), slo: { p99Ms: 25, maxCostPerMillion: 0.005 } })]),
    ).decisions.get('r');
    assert.ok((d?.costPerMillion ?? 1) <= 0.005, `cost ${d?.costPerMillion}`);
    const large = d?.variants.find((v) => v.variant === 'large')?.share ?? 0;
    assert.ok(large < 0.35, `large share ${large}`);
    assert.equal(mix(snapshot([routeInput({ rate: rate(50) })])).large, 1, 'without the cap, large alone');
  });

  test('decide is pure: the same snapshot gives the same result and is not modified', () => {
    const s = snapshot([routeInput({ rate: rate(800), state: settled(3) })]);
    const before = JSON.stringify(s.routes);
    const a = decide(s);
    const b = decide(s);
    assert.deepEqual([...a.decisions.values()], [...b.decisions.values()]);
    assert.deepEqual([...a.states.values()], [...b.states.values()]);
    assert.equal(JSON.stringify(s.routes), before);
  });
});
