import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchesIn, counterDelta, parsePrometheus, sumOf } from '../../../bench/prom.js';

const BEFORE = `# HELP slogate_cost_total Accumulated cost
# TYPE slogate_cost_total counter
slogate_cost_total{route="digits",variant="digits/large"} 0.5
slogate_cost_total{route="other",variant="digits/tiny"} 9
slogate_slo_requests_total{route="digits",outcome="met"} 10
slogate_decision_changes_total{route="digits"} 2
`;
const AFTER = `slogate_cost_total{route="digits",variant="digits/large"} 1.5
slogate_cost_total{route="digits",variant="digits/tiny"} 0.25
slogate_cost_total{route="other",variant="digits/tiny"} 20
slogate_slo_requests_total{route="digits",outcome="met"} 110
slogate_slo_requests_total{route="digits",outcome="shed"} 5
slogate_decision_changes_total{route="digits"} 5
`;

test('parsePrometheus reads names, labels (with escapes) and values; skips comments', () => {
  const { samples: s, declared } = parsePrometheus(
    '# c\n# TYPE m_total counter\nm_total{a="x\\"y",b="2"} 3.5\nplain 7 1712345678\nh_bucket{le="+Inf"} +Inf\n',
  );
  assert.deepEqual([...declared], ['m_total']);
  assert.deepEqual(s, [
    { name: 'm_total', labels: { a: 'x"y', b: '2' }, value: 3.5 },
    { name: 'plain', labels: {}, value: 7 },
    { name: 'h_bucket', labels: { le: '+Inf' }, value: Number.POSITIVE_INFINITY },
  ]);
  assert.equal(sumOf(parsePrometheus(AFTER).samples, 'slogate_cost_total', { route: 'digits' }), 1.75);
  assert.equal(sumOf(parsePrometheus(AFTER).samples, 'missing'), undefined);
});

test('counterDelta: cost, cost by variant, switches and SLO outcomes of one route between two scrapes', () => {
  const d = counterDelta(parsePrometheus(BEFORE), parsePrometheus(AFTER), 'digits');
  assert.deepEqual(d, {
    cost: 1.25,
    costByVariant: { 'digits/large': 1, 'digits/tiny': 0.25 },
    switches: 3,
    sloOutcomes: { met: 100, shed: 5 },
  });
  assert.equal(counterDelta(undefined, parsePrometheus(AFTER), 'digits'), undefined);
  const empty = parsePrometheus('');
  assert.deepEqual(counterDelta(empty, empty, 'digits'), {
    cost: null,
    costByVariant: {},
    switches: null,
    sloOutcomes: {},
  });
  // A labelled counter that was never incremented has no sample but is declared: zero, not unknown.
  const declared = parsePrometheus('# TYPE slogate_decision_changes_total counter\n');
  assert.equal(counterDelta(empty, declared, 'digits')?.switches, 0);
});

test("batchesIn: one variant's batches, their rows and the inline ones between two scrapes", () => {
  const at = (count: number, rows: number, inline: number, other: number) =>
    parsePrometheus(
      [
        `slogate_batch_size_count{model="digits",variant="digits/small"} ${count}`,
        `slogate_batch_size_sum{model="digits",variant="digits/small"} ${rows}`,
        `slogate_inline_batches_total{model="digits",variant="digits/small"} ${inline}`,
        `slogate_batch_size_count{model="digits",variant="digits/large"} ${other}`,
      ].join('\n'),
    );
  assert.deepEqual(batchesIn(at(10, 40, 8, 3), at(30, 130, 25, 9), 'digits/small'), {
    count: 20,
    rows: 90,
    inline: 17,
  });
  assert.deepEqual(batchesIn(at(1, 1, 0, 0), at(1, 1, 0, 5), 'digits/small'), { count: 0, rows: 0, inline: 0 });
  // A server without slogate's metrics (a peer), or a scrape that failed: no batches to show.
  assert.equal(batchesIn(parsePrometheus(''), parsePrometheus('up 1'), 'digits/small'), undefined);
  assert.equal(batchesIn(undefined, at(1, 1, 0, 0), 'digits/small'), undefined);
});
