// slogate apply's plan: a pure diff of a config against a running server, table-driven.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonical, type DeclaredState, planApply } from '../../../policies/apply-plan.js';

const A = 'sha256:aa';
const B = 'sha256:bb';
const route = { model: 'm', slo: { p99Ms: 25 }, priority: 0 };
const base: DeclaredState = { models: { m: { small: A, large: B } }, routes: { r: route } };

describe('planApply', () => {
  const cases: [string, DeclaredState, string[]][] = [
    ['the same: nothing to do', base, []],
    [
      'the same route, keys in another order',
      { ...base, routes: { r: { priority: 0, slo: { p99Ms: 25 }, model: 'm' } } },
      [],
    ],
    ['a changed file becomes a gated deploy', { ...base, models: { m: { small: B, large: B } } }, ['deploy m/small']],
    [
      'an SLO change updates the route',
      { ...base, routes: { r: { ...route, slo: { p99Ms: 10 } } } },
      ['route r update'],
    ],
    ['a new route is added', { ...base, routes: { r: route, s: route } }, ['route s add']],
    ['a removed route needs a restart', { ...base, routes: {} }, ['restart route r is removed']],
    [
      'a new variant needs a restart',
      { ...base, models: { m: { small: A, large: B, tiny: A } } },
      ['restart variant m/tiny is new'],
    ],
    [
      'a removed variant needs a restart',
      { ...base, models: { m: { small: A } } },
      ['restart variant m/large is removed'],
    ],
    ['a new model needs a restart', { ...base, models: { ...base.models, n: { x: A } } }, ['restart model n is new']],
    [
      'deploys come before routes, routes before restarts',
      { models: { m: { small: B, large: B } }, routes: { s: route } },
      ['deploy m/small', 'route s add', 'restart route r is removed'],
    ],
  ];
  for (const [name, desired, want] of cases)
    test(name, () => {
      const got = planApply(desired, base).map((s) =>
        s.kind === 'deploy'
          ? `deploy ${s.model}/${s.variant}`
          : s.kind === 'route'
            ? `route ${s.route} ${s.change}`
            : `restart ${s.reason}`,
      );
      assert.deepEqual(got, want);
    });
});

test('canonical sorts keys at every depth and keeps array order', () => {
  assert.equal(canonical({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
});
