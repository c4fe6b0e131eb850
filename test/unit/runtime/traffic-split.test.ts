// The traffic split: exact canary and shadow shares per batch, and the row agreement of two outputs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { agreeingRows, TrafficSplit } from '../../../runtime/traffic-split.js';

describe('TrafficSplit', () => {
  test('a 25% canary sends exactly one batch in four to the candidate', () => {
    const s = new TrafficSplit();
    s.set('m', 'v', { revision: 'sha256:c', canaryShare: 0.25, shadowShare: 0 });
    const picks = Array.from({ length: 100 }, () => s.pickCanary('m', 'v'));
    assert.equal(picks.filter((p) => p === 'sha256:c').length, 25);
    assert.equal(s.pickCanary('m', 'other'), undefined);
  });

  test('shadow share picks its own batches; cleared, nothing goes to the candidate', () => {
    const s = new TrafficSplit();
    s.set('m', 'v', { revision: 'sha256:c', canaryShare: 0, shadowShare: 0.1 });
    assert.equal(Array.from({ length: 50 }, () => s.pickShadow('m', 'v')).filter(Boolean).length, 5);
    assert.equal(s.pickCanary('m', 'v'), undefined);
    s.set('m', 'v', undefined);
    assert.equal(s.pickShadow('m', 'v'), undefined);
    assert.equal(s.get('m', 'v'), undefined);
  });

  test('reports reach listeners only while the variant has a candidate', () => {
    const s = new TrafficSplit();
    const seen: string[] = [];
    s.listen({ onBatch: (b) => seen.push(b.role) });
    const b = { model: 'm', variant: 'v', role: 'active' as const, rows: 1, requests: 1, computeMs: 1 };
    s.reportBatch(b);
    s.set('m', 'v', { revision: 'sha256:c', canaryShare: 0.5, shadowShare: 0 });
    s.reportBatch(b);
    assert.deepEqual(seen, ['active']);
  });

  test('agreeingRows compares the argmax of each row', () => {
    const a = [0, 1, 0, 5, 0, 0];
    const b = [0, 2, 0, 0, 0, 1];
    assert.equal(agreeingRows(a, b, 2), 1);
    assert.equal(agreeingRows(a, a, 2), 2);
    assert.equal(agreeingRows(a, [1, 2], 2), 0);
  });
});
