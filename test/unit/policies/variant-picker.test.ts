import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VariantPicker } from '../../../policies/variant-picker.js';

test('VariantPicker spreads picks exactly by share over every window of one cycle', () => {
  const p = new VariantPicker();
  p.set([
    { variant: 'large', share: 0.7 },
    { variant: 'small', share: 0.3 },
  ]);
  const picks = Array.from({ length: 100 }, () => p.pick());
  assert.equal(picks.filter((x) => x === 'large').length, 70);
  // Smooth: in any 10 consecutive picks, 'small' appears 3 times (+-1).
  for (let i = 0; i + 10 <= 100; i++) {
    const n = picks.slice(i, i + 10).filter((x) => x === 'small').length;
    assert.ok(n >= 2 && n <= 4, `window at ${i} has ${n} small`);
  }
});

test('VariantPicker ignores zero shares and returns undefined when empty', () => {
  const p = new VariantPicker();
  assert.equal(p.pick(), undefined);
  p.set([
    { variant: 'a', share: 0 },
    { variant: 'b', share: 1 },
  ]);
  assert.deepEqual([p.pick(), p.pick()], ['b', 'b']);
});
