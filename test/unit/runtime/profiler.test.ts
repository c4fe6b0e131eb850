// Profiler.sweep: what it runs on the replicas. A stub pool records each task and answers at once (the real
// profiler against real workers runs in the runtime integration tests).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SystemClock } from '../../../core/clock.js';
import type { ModelConfig } from '../../../core/config.js';
import type { ModelInfo } from '../../../runtime/model-repository.js';
import { batchSizes, Profiler } from '../../../runtime/profiler.js';
import type { BatchOutcome, BatchTask } from '../../../runtime/replica.js';
import type { ReplicaPool } from '../../../runtime/replica-pool.js';

function stubPool(slots: number): { pool: ReplicaPool; tasks: BatchTask[] } {
  const tasks: BatchTask[] = [];
  const pool = {
    readySlots: slots,
    run: async (build: () => BatchTask): Promise<BatchOutcome> => {
      const task = build();
      tasks.push(task);
      return { outputs: [], inferMs: 0.1 * task.rows, workerMs: 0.1 * task.rows, replicaId: 'stub' };
    },
  };
  return { pool: pool as unknown as ReplicaPool, tasks };
}

const MODEL: ModelInfo = {
  name: 'm',
  config: { maxBatch: 8 } as ModelConfig,
  variants: new Map([
    ['v', { model: 'm', name: 'v', path: '/dev/null', sha256: 'abc', sizeBytes: 1, accuracy: undefined }],
  ]),
  signature: {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
    batchable: true,
  },
};

test('a variant read from the cache is still warmed: every batch size, twice, on every slot, before the sweep returns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slogate-profiler-'));
  try {
    const clock = new SystemClock();
    const options = { samples: 5, budgetMs: 0, cacheDir: dir, hostKey: 'test' };
    const first = stubPool(2);
    const measured = await new Profiler(first.pool, clock).sweep([MODEL], options);
    assert.equal(measured[0]?.cached, false, 'first start: measured, and written to the cache');

    const second = stubPool(2);
    const cached = await new Profiler(second.pool, clock).sweep([MODEL], options);
    assert.equal(cached[0]?.cached, true, 'second start: read from the cache');
    assert.deepEqual(cached[0]?.points, measured[0]?.points);
    const rows = second.tasks.map((t) => t.rows).sort((a, b) => a - b);
    const expected = batchSizes(8)
      .flatMap((b) => [b, b, b, b]) // 2 rounds x 2 slots
      .sort((a, b) => a - b);
    assert.deepEqual(rows, expected);
    assert.ok(second.tasks.every((t) => t.model === 'm' && t.variant === 'v' && t.inputs[0]?.shape[0] === t.rows));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
