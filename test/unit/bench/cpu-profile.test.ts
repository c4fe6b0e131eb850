import assert from 'node:assert/strict';
import { test } from 'node:test';
import { topSelfTime } from '../../../bench/cpu-profile.js';

const frame = (functionName: string, url: string, lineNumber: number) => ({ functionName, url, lineNumber });

test('self time merges the same function, names dependencies by package path and sorts largest first', () => {
  const profile = {
    startTime: 0,
    endTime: 100_000,
    nodes: [
      { callFrame: frame('(idle)', '', -1), hitCount: 10 },
      { callFrame: frame('postTask', 'file:///x/node_modules/piscina/dist/index.js', 115), hitCount: 30 },
      { callFrame: frame('handler', 'file:///repo/dist/gateway/v2/infer.js', 52), hitCount: 20 },
      { callFrame: frame('postTask', 'file:///x/node_modules/piscina/dist/index.js', 115), hitCount: 30 },
      { callFrame: frame('', 'file:///repo/dist/a.js', 0), hitCount: 10 },
    ],
  };
  const top = topSelfTime(profile, 3, '/repo/');
  assert.deepEqual(
    top.map((t) => t.name),
    ['postTask piscina/dist/index.js:116', 'handler dist/gateway/v2/infer.js:53', '(idle)'],
  );
  assert.equal(top[0]?.share, 0.6);
  assert.equal(top[0]?.ms, 60);
});
