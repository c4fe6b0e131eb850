// Reading CPU time from /proc stat lines: a name with spaces and parentheses, ticks of 10 ms.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseStat, processCpuMs } from '../../../bench/proc-stat.js';

test('a stat line gives its name and user + system CPU in ms, whatever the name holds', () => {
  const fields = ['S', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '17', '4', '99', '98'];
  const got = parseStat(`123 (node (worker) 1) ${fields.join(' ')}`);
  assert.deepEqual(got, { name: 'node (worker) 1', cpuMs: 210 });
});

test("this process's CPU grows as it works", () => {
  const before = processCpuMs(process.pid);
  const start = process.cpuUsage();
  let x = 0;
  while (process.cpuUsage(start).user < 80_000) x += Math.sqrt(x + 1);
  assert.ok(x > 0);
  assert.ok(processCpuMs(process.pid) >= before + 50);
});
