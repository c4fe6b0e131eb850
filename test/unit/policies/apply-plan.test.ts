// slogate apply's plan: a pure diff of a config against a running server, table-driven.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonical, type DeclaredState, describeStep, planApply } from '../../../policies/apply-plan.js';

const A = 'sha256:aa';
const B = 'sha256:bb';
const route = { model: 'm', slo: { p99Ms: 25 }, priority: 0 };
const base: DeclaredState = {
  models: { m: { small: A, large: B } },
  routes: { r: route },
  settings: { server: { drainTimeoutMs: 10 } },
};

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
    ['a removed route is removed', { ...base, routes: {} }, ['route r remove']],
    ['a new variant is added', { ...base, models: { m: { small: A, large: B, tiny: A } } }, ['variant m/tiny add']],
    ['a removed variant is removed', { ...base, models: { m: { small: A } } }, ['variant m/large remove']],
    ['a new model needs a restart', { ...base, models: { ...base.models, n: { x: A } } }, ['restart model n is new']],
    ['a removed model needs a restart', { ...base, models: {} }, ['restart model m is removed']],
    [
      'a changed setting needs a restart; one the server does not report is not compared',
      { ...base, settings: { server: { drainTimeoutMs: 5 }, engine: { tickMs: 9 } } },
      ['restart server changed'],
    ],
    [
      'order: deploys, new variants, routes, removed routes, removed variants, restarts',
      {
        models: { m: { small: B, tiny: A }, n: { x: A } },
        routes: { s: route },
      },
      [
        'deploy m/small',
        'variant m/tiny add',
        'route s add',
        'route r remove',
        'variant m/large remove',
        'restart model n is new',
      ],
    ],
  ];
  for (const [name, desired, want] of cases)
    test(name, () => {
      const got = planApply(desired, base).map((s) => {
        if (s.kind === 'deploy') return `deploy ${s.model}/${s.variant}`;
        if (s.kind === 'variant') return `variant ${s.model}/${s.variant} ${s.change}`;
        if (s.kind === 'route') return `route ${s.route} ${s.change}`;
        return `restart ${s.reason}`;
      });
      assert.deepEqual(got, want);
    });
});

test('canonical sorts keys at every depth and keeps array order', () => {
  assert.equal(canonical({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
});

test('describeStep names what each step does', () => {
  assert.match(
    describeStep({ kind: 'variant', model: 'm', variant: 'v', change: 'remove', revision: A }),
    /^variant {2}m\/v: remove sha256:aa \(drained, then unloaded\)$/,
  );
  assert.match(describeStep({ kind: 'route', route: 'r', change: 'remove' }), /^route {4}r: remove/);
});
