// The ladder and positions on it: a changed ladder carries the position over, never up.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, type RouteEngineState } from '../../../../policies/engine/index.js';
import { buildLadder, carryPosition, ladderAccuracy, snap } from '../../../../policies/engine/ladder.js';
import type { VariantModel } from '../../../../policies/latency-model.js';
import { FAMILY, mix, rate, routeInput, settled, snapshot, variant } from './fixtures.js';

describe('ladder', () => {
  const names = (ladder: readonly VariantModel[]) => ladder.map((v) => v.name);
  const ladderCases: [
    name: string,
    variants: VariantModel[],
    minAccuracy: number | undefined,
    budgetMs: number,
    want: string[],
  ][] = [
    ['every variant fits: cheapest first', FAMILY, undefined, 22.5, ['tiny', 'small', 'cnn', 'large']],
    ['minAccuracy drops the less accurate', FAMILY, 0.95, 22.5, ['cnn', 'large']],
    ['a tight budget drops the slow variant', FAMILY, undefined, 2.7, ['tiny', 'small', 'cnn']],
    [
      'slower and less accurate than another: never on it',
      [...FAMILY, variant('bad', 0.93, 1, 0.5)],
      undefined,
      22.5,
      ['tiny', 'small', 'cnn', 'large'],
    ],
    [
      'an unknown accuracy never passes a minAccuracy',
      [variant('odd', Number.NaN, 0.01, 0.001), ...FAMILY],
      0.9,
      22.5,
      ['tiny', 'small', 'cnn', 'large'],
    ],
  ];
  for (const [name, variants, minAccuracy, budgetMs, want] of ladderCases)
    test(`buildLadder: ${name}`, () => {
      assert.deepEqual(names(buildLadder(variants, minAccuracy, 0.5, budgetMs, 1)), want);
    });

  const FULL = ['tiny', 'small', 'cnn', 'large'];
  const models = new Map(FAMILY.map((v) => [v.name, v]));
  const rungs = (...n: string[]) => n.map((name) => models.get(name) as VariantModel);
  const carryCases: [name: string, position: number, previous: string[], next: VariantModel[], want: object][] = [
    [
      'a mix whose rungs are still neighbours',
      2.5,
      FULL,
      rungs('tiny', 'cnn', 'large'),
      { position: 1.5, gone: ['small'], added: [] },
    ],
    [
      'the upper rung gone: the lower one',
      2.5,
      FULL,
      rungs('tiny', 'small', 'cnn'),
      { position: 2, gone: ['large'], added: [] },
    ],
    [
      'the rung gone: the best one no more accurate',
      1,
      FULL,
      rungs('tiny', 'cnn', 'large'),
      { position: 0, gone: ['small'], added: [] },
    ],
    [
      'a rung added below: the same variant, renumbered',
      1,
      ['tiny', 'cnn'],
      rungs('tiny', 'small', 'cnn'),
      { position: 2, gone: [], added: ['small'] },
    ],
  ];
  for (const [name, position, previous, next, want] of carryCases)
    test(`carryPosition: ${name}`, () => {
      assert.deepEqual(carryPosition(position, previous, next, models), want);
    });

  test('positions: a mix weighs its rungs by share; snap rounds to the grid', () => {
    assert.equal(ladderAccuracy(FAMILY, 3), 0.992);
    assert.ok(Math.abs(ladderAccuracy(FAMILY, 2.5) - (0.985 + 0.992) / 2) < 1e-12);
    assert.equal(snap(2.5 + 1e-12), 2.5);
    assert.equal(snap(2.024), 2);
    assert.equal(snap(2.026), 2.05);
  });

  test('a ladder change keeps a mix whose rungs are still neighbours, and says what changed', () => {
    // `small` became too slow to be eligible: the cnn/large mix at 2.5 is position 1.5 on the new ladder.
    const slowSmall = FAMILY.map((v) => (v.name === 'small' ? variant('small', 0.94, 30, 0.01) : v));
    const s = snapshot([routeInput({ rate: rate(100), state: settled(2.5) })], {
      variants: new Map([['m', new Map(slowSmall.map((v) => [v.name, v]))]]),
    });
    const r = decide(s);
    assert.deepEqual(r.states.get('r')?.ladder, ['tiny', 'cnn', 'large']);
    assert.equal(r.states.get('r')?.position, 1.5);
    assert.deepEqual(mix(s), { cnn: 0.5, large: 0.5 });
    assert.match(r.decisions.get('r')?.reason ?? '', /^no longer eligible: small; /);
  });

  test('a ladder change that removes the top rung falls to the lower rung of the mix, never up', () => {
    const slowLarge = FAMILY.map((v) => (v.name === 'large' ? variant('large', 0.992, 30, 1.2) : v));
    const models = (f: VariantModel[]) => new Map([['m', new Map(f.map((v) => [v.name, v]))]]);
    const r = decide(snapshot([routeInput({ rate: rate(100), state: settled(2.5) })], { variants: models(slowLarge) }));
    const st = r.states.get('r') as RouteEngineState;
    assert.deepEqual(st.ladder, ['tiny', 'small', 'cnn']);
    assert.equal(st.position, 2);
    assert.match(r.decisions.get('r')?.reason ?? '', /^no longer eligible: large; /);
    // large recovers: it is eligible again, but the position does not jump to it (upgrades wait for hysteresis).
    const back = decide(
      snapshot([routeInput({ rate: rate(100), state: st })], { variants: models(FAMILY), nowMs: 100_250 }),
    );
    assert.deepEqual(back.states.get('r')?.ladder, ['tiny', 'small', 'cnn', 'large']);
    assert.equal(back.states.get('r')?.position, 2);
    assert.match(back.decisions.get('r')?.reason ?? '', /^eligible again: large; /);
  });
});
