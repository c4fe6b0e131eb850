// Shared replicas: less important routes yield first; overload admits by priority.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from '../../../../policies/engine/index.js';
import { rate, routeInput, settled, snapshot } from './fixtures.js';

describe('shared capacity', () => {
  test('overload at the cheapest choice: admission by priority, sheddable routes shed first', () => {
    const r = decide(
      snapshot([
        routeInput({
          name: 'gold',
          priority: 10,
          rate: rate(6000),
          allowed: ['cnn'],
          state: settled(0, { ladder: ['cnn'] }),
        }),
        routeInput({
          name: 'bulk',
          priority: -1,
          rate: rate(6000),
          allowed: ['cnn'],
          state: settled(0, { ladder: ['cnn'] }),
        }),
      ]),
    );
    const gold = r.decisions.get('gold');
    const bulk = r.decisions.get('bulk');
    assert.ok(
      (bulk?.admissionRps ?? Number.POSITIVE_INFINITY) < (gold?.admissionRps ?? 0),
      `gold ${gold?.admissionRps}, bulk ${bulk?.admissionRps}`,
    );
  });

  test('two routes over shared replicas: the less important one steps down first', () => {
    const r = decide(
      snapshot([
        routeInput({ name: 'gold', priority: 10, rate: rate(350), state: settled(3) }),
        routeInput({ name: 'bulk', priority: -1, rate: rate(350), slo: { p99Ms: 40 }, state: settled(3) }),
      ]),
    );
    const gold = r.states.get('gold')?.position ?? 0;
    const bulk = r.states.get('bulk')?.position ?? 3;
    assert.ok(gold > bulk, `gold at ${gold}, bulk at ${bulk}`);
  });
});
