import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '../../../../core/prng.js';
import { millis, serverTiming } from '../../../../gateway/v2/server-timing.js';

test('millis writes three decimals as toFixed(3) does, away from halfway cases', () => {
  const exact: [number, string][] = [
    [0, '0.000'],
    [0.0004, '0.000'],
    [0.0006, '0.001'],
    [0.05, '0.050'],
    [1.5, '1.500'],
    [9.9996, '10.000'],
    [12.3456, '12.346'],
    [999.999, '999.999'],
    [123456.789, '123456.789'],
  ];
  for (const [ms, want] of exact) assert.equal(millis(ms), want, String(ms));
  const rand = mulberry32(3);
  for (let i = 0; i < 20_000; i++) {
    const ms = rand() * 10 ** Math.floor(rand() * 7 - 2);
    const halfway = Math.abs(((ms * 1000) % 1) - 0.5) < 1e-6;
    if (!halfway) assert.equal(millis(ms), ms.toFixed(3), String(ms));
    assert.match(millis(ms), /^\d+\.\d{3}$/);
    assert.ok(Math.abs(Number(millis(ms)) - ms) <= 0.0005 + 1e-9, String(ms));
  }
});

test('millis leaves negative, huge and non-finite values to toFixed', () => {
  for (const ms of [-0.5, -12.3456, 1e9, 3e12, Number.NaN, Number.POSITIVE_INFINITY])
    assert.equal(millis(ms), ms.toFixed(3), String(ms));
});

test('serverTiming names the three durations, and says when an answer was best-effort', () => {
  assert.equal(serverTiming(0.25, 1.5, 2, false), 'queue;dur=0.250, infer;dur=1.500, total;dur=2.000');
  assert.equal(
    serverTiming(0, 0.0004, 31.4159, true),
    'queue;dur=0.000, infer;dur=0.000, total;dur=31.416, best-effort',
  );
});
