// The runtime with real worker replicas: execution-provider fallback, and replicas replaced after they die.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SystemClock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { Metrics } from '../../core/metrics.js';
import { Runtime } from '../../runtime/runtime.js';
import { digitsConfig } from '../helpers.js';

function recordingLogger(lines: string[]): Logger {
  const log = (a: unknown, b?: string) => lines.push(typeof a === 'string' ? a : (b ?? JSON.stringify(a)));
  const l: Logger = { error: log, warn: log, info: () => {}, debug: () => {}, child: () => l };
  return l;
}

test('device cuda without a CUDA provider falls back to CPU with one clear warning, and still serves', async () => {
  const lines: string[] = [];
  const cfg = digitsConfig({ runtime: { workers: 1, device: 'cuda', profile: { enabled: false } } });
  const rt = await Runtime.create({
    config: cfg,
    clock: new SystemClock(),
    metrics: new Metrics({ defaultMetrics: false }),
    logger: recordingLogger(lines),
  });
  await rt.start();
  try {
    assert.equal(rt.provider, 'cpu');
    assert.equal(rt.replicaStats()[0]?.provider, 'cpu');
    const warnings = lines.filter((l) => l.includes('CUDA execution provider unavailable'));
    assert.equal(warnings.length, 1, lines.join('\n'));
    const now = performance.now();
    const r = await rt.submit({
      model: 'digits',
      variant: 'tiny',
      inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: new Float32Array(784) }],
      rows: 1,
      arrivalMs: now,
      deadlineAtMs: now + 10_000,
      priority: 0,
    });
    assert.deepEqual(r.outputs[0]?.shape, [1, 10]);
  } finally {
    await rt.close();
  }
});
