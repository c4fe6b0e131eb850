import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counterDelta, parsePrometheus, sumOf } from '../../../bench/prom.js';
import { escapeXml, lineChart, niceTicks, stackedAreaChart } from '../../../bench/svg.js';

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

test('niceTicks picks 1-2-2.5-5 steps covering the range', () => {
  assert.deepEqual(niceTicks(0, 100), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0, 1.02), [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(niceTicks(0, 0), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test('lineChart: one self-contained SVG with the SLO line, escaped text and gaps where data is missing', () => {
  const svg = lineChart({
    title: 'p99 <route>',
    xLabel: 't',
    yLabel: 'ms',
    series: [
      {
        name: 'p99',
        points: [
          [0, 1],
          [1, null],
          [2, 3],
          [3, 4],
        ],
      },
    ],
    hlines: [{ y: 25, label: 'SLO 25 ms' }],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /^<svg [^>]*>\n<title>[^<]+<\/title>\n/, 'an accessible title right after the opening tag');
  assert.match(svg, /<\/svg>\n$/);
  assert.ok(svg.includes('p99 &lt;route&gt;'));
  assert.ok(svg.includes('SLO 25 ms'));
  const path = /<path d="([^"]+)" fill="none"/.exec(svg)?.[1] ?? '';
  assert.equal(path.match(/M/g)?.length, 2, path);
  assert.equal(escapeXml(`a&b"'`), 'a&amp;b&quot;&#39;');
});

test('stackedAreaChart normalises each column to shares and leaves empty columns as gaps', () => {
  const svg = stackedAreaChart({
    title: 'mix',
    xLabel: 't',
    yLabel: 'share',
    xs: [0, 1, 2, 3],
    layers: [
      { name: 'large', values: [3, 0, 1, 2] },
      { name: 'tiny', values: [1, 0, 1, 2] },
    ],
  });
  const areas = [...svg.matchAll(/<path d="([^"]+)" fill="#/g)].map((m) => m[1] as string);
  assert.equal(areas.length, 2);
  for (const d of areas) assert.equal(d.match(/M/g)?.length, 2, 'column 1 has no answers: two runs');
});
