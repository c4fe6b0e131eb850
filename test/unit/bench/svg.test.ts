import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml, lineChart, niceTicks, stackedAreaChart } from '../../../bench/svg.js';

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
