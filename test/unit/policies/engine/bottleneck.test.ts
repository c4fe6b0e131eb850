// Which bottleneck: a gateway-bound breach keeps the variant and admits less; admission recovers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { diagnose, observedBreachOf, ownP99 } from '../../../../policies/engine/bottleneck.js';
import { decide } from '../../../../policies/engine/index.js';
import { rate, routeInput, settled, snapshot } from './fixtures.js';

describe('bottleneck', () => {
  const diagnoses: [gateway: number, replicas: number, want: { replicaBound: boolean; gatewayBound: boolean }][] = [
    [0.9, 0.2, { replicaBound: false, gatewayBound: true }],
    [0.9, 0.6, { replicaBound: true, gatewayBound: false }],
    [0.5, 0.6, { replicaBound: true, gatewayBound: false }],
    [0.5, 0.2, { replicaBound: false, gatewayBound: false }],
  ];
  for (const [gateway, replicas, want] of diagnoses)
    test(`diagnose: event loop ${gateway}, replicas ${replicas}`, () => {
      const s = snapshot([], { gatewayUtilisation: gateway, replicaUtilisation: replicas });
      assert.deepEqual(diagnose(s), want);
    });

  // Target 25 ms: the window's p99, the p99 since the last switch, whether it is a breach, the route's own p99.
  const breaches: [window: number, sinceSwitch: number, breach: boolean, own: number][] = [
    [Number.NaN, Number.NaN, false, Number.NaN],
    [30, Number.NaN, true, 30],
    [30, 20, false, 20],
    [20, 30, false, 30],
    [30, 30, true, 30],
  ];
  for (const [window, sinceSwitch, breach, own] of breaches)
    test(`observed breach: window ${window} ms, since the switch ${sinceSwitch} ms`, () => {
      const r = routeInput({ observedP99Ms: window, observedSinceSwitchP99Ms: sinceSwitch });
      assert.equal(observedBreachOf(r), breach);
      assert.equal(ownP99(r), own);
    });

  test('an observed breach while the gateway is saturated and replicas idle: keep the variant, admit less', () => {
    const r = decide(
      snapshot([routeInput({ rate: rate(1000), observedP99Ms: 40, state: settled(2) })], {
        gatewayUtilisation: 0.95,
        replicaUtilisation: 0.2,
      }),
    );
    const d = r.decisions.get('r');
    assert.equal(r.states.get('r')?.position, 2);
    assert.ok((r.states.get('r')?.admitFactor ?? 1) < 1);
    assert.ok(Number.isFinite(d?.admissionRps) && (d?.admissionRps ?? 0) < 1000);
    assert.match(d?.reason ?? '', /gateway saturated/);
  });

  test('admission recovers when the route meets its target, or, while a stale breach stays in the window, once the gateway is idle', () => {
    const st = settled(2, { admitFactor: 0.3, lastBreachMs: 99_900 });
    const cases: [observed: number, loop: number, lastBreachMs: number, factor: number][] = [
      [40, 0.8, 99_900, 0.3], // breaching, loop between the thresholds: hold
      [40, 0.3, 99_900, 0.3], // breaching, idle loop, but a cut 100 ms ago: hold
      [40, 0.3, 97_000, 0.35], // breaching, idle loop, no cut for 3 s: the breach is stale, recover
      [40, 0.6, 97_000, 0.3], // ... but only with the loop clearly idle
      [10, 0.6, 99_900, 0.35], // meeting the target with room: recover
    ];
    for (const [observed, loop, lastBreachMs, factor] of cases) {
      const r = decide(
        snapshot([routeInput({ rate: rate(1000), observedP99Ms: observed, state: { ...st, lastBreachMs } })], {
          gatewayUtilisation: loop,
          replicaUtilisation: 0.2,
        }),
      );
      assert.ok(
        Math.abs((r.states.get('r')?.admitFactor ?? 0) - factor) < 1e-9,
        `p99 ${observed}, loop ${loop}, last cut ${lastBreachMs}: ${r.states.get('r')?.admitFactor}`,
      );
    }
  });
});
