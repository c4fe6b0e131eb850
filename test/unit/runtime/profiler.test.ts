// Profiler.sweep: what it runs on the replicas. A stub pool records each task and answers at once (the real
// profiler against real workers runs in the runtime integration tests).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SystemClock } from '../../../core/clock.js';
import type { ModelConfig } from '../../../core/config.js';
import { type Logger, silentLogger } from '../../../core/logger.js';
import type { ModelInfo } from '../../../runtime/model-repository.js';
import { batchSizes, hostKey, Profiler } from '../../../runtime/profiler.js';
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

/** A logger that keeps its warnings and info lines. */
function recordingLogger(): { logger: Logger; warnings: string[]; infos: string[] } {
  const warnings: string[] = [];
  const infos: string[] = [];
  const text = (a: unknown, b?: string) => (typeof a === 'string' ? a : (b ?? ''));
  const logger: Logger = {
    ...silentLogger,
    warn: (a: unknown, b?: string) => warnings.push(text(a, b)),
    info: (a: unknown, b?: string) => infos.push(text(a, b)),
    child: () => logger,
  };
  return { logger, warnings, infos };
}

test('a cached profile that is parseable but wrong is measured again, with a log line, and the file rewritten', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slogate-profiler-'));
  try {
    const clock = new SystemClock();
    const options = { samples: 5, budgetMs: 0, cacheDir: dir, hostKey: 'test' };
    await new Profiler(stubPool(1).pool, clock).sweep([MODEL], options);
    const [name] = readdirSync(dir);
    assert.ok(name !== undefined);
    const file = join(dir, name);
    const good = JSON.parse(readFileSync(file, 'utf8')) as { hopMs: number; points: Record<string, unknown>[] };
    assert.deepEqual(
      good.points.map((p) => p.rows),
      [1, 2, 4, 8],
    );
    const withPoint = (i: number, patch: Record<string, unknown>) => ({
      ...good,
      points: good.points.map((p, j) => (j === i ? { ...p, ...patch } : p)),
    });
    const corrupt: Record<string, string> = {
      'a string time': JSON.stringify(withPoint(0, { p50Ms: '0.1' })),
      'a zero time': JSON.stringify(withPoint(1, { p50Ms: 0, p99Ms: 0 })),
      'a negative time': JSON.stringify(withPoint(2, { p99Ms: -5 })),
      'p99 below p50': JSON.stringify(withPoint(3, { p50Ms: 9, p99Ms: 1 })),
      'a negative hop': JSON.stringify({ ...good, hopMs: -1 }),
      'a missing batch size': JSON.stringify({ ...good, points: good.points.slice(0, 3) }),
      'batch sizes out of order': JSON.stringify({ ...good, points: [...good.points].reverse() }),
      'rows as a string': JSON.stringify(withPoint(0, { rows: '1' })),
      'not JSON': '{"hopMs": 0.1, "points": [',
    };
    for (const [what, text] of Object.entries(corrupt)) {
      writeFileSync(file, text);
      const { logger, warnings } = recordingLogger();
      const run = stubPool(1);
      const [sweep] = await new Profiler(run.pool, clock, logger).sweep([MODEL], options);
      assert.equal(sweep?.cached, false, `${what}: measured again`);
      assert.ok(
        sweep?.points.every((p) => typeof p.p50Ms === 'number' && p.p50Ms > 0 && p.p99Ms >= p.p50Ms),
        `${what}: measured points are sane`,
      );
      assert.equal(warnings.length, 1, `${what}: one log line`);
      assert.match(warnings[0] ?? '', /profile cache .* is invalid .*measuring again/, what);
      const [again] = await new Profiler(stubPool(1).pool, clock).sweep([MODEL], options);
      assert.equal(again?.cached, true, `${what}: the rewritten file is read back`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a cached profile older than maxAgeMs is measured again and rewritten; a younger one, or no limit, is used', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slogate-profiler-'));
  try {
    const clock = new SystemClock();
    const hour = 3_600_000;
    const options = { samples: 5, budgetMs: 0, cacheDir: dir, hostKey: 'test', maxAgeMs: 24 * hour };
    await new Profiler(stubPool(1).pool, clock).sweep([MODEL], options);
    const [name] = readdirSync(dir);
    assert.ok(name !== undefined);
    const file = join(dir, name);
    const age = (ms: number) => {
      const t = new Date(Date.now() - ms);
      utimesSync(file, t, t);
    };

    age(23 * hour);
    const young = recordingLogger();
    const [kept] = await new Profiler(stubPool(1).pool, clock, young.logger).sweep([MODEL], options);
    assert.equal(kept?.cached, true, 'younger than the limit: read from the cache');
    assert.deepEqual(young.infos, []);

    age(25 * hour);
    for (const unlimited of [undefined, 0])
      assert.equal(
        (await new Profiler(stubPool(1).pool, clock).sweep([MODEL], { ...options, maxAgeMs: unlimited }))[0]?.cached,
        true,
        `maxAgeMs ${unlimited}: never expires`,
      );

    const old = recordingLogger();
    const [measured] = await new Profiler(stubPool(1).pool, clock, old.logger).sweep([MODEL], options);
    assert.equal(measured?.cached, false, 'older than the limit: measured again');
    assert.equal(old.infos.length, 1);
    assert.match(old.infos[0] ?? '', /profile cache .* is 25\.0 hours old; measuring again/);
    assert.deepEqual(old.warnings, []);
    assert.ok(Date.now() - statSync(file).mtimeMs < hour, 'the file was rewritten');
    const [again] = await new Profiler(stubPool(1).pool, clock).sweep([MODEL], options);
    assert.equal(again?.cached, true, 'the rewritten file is read back');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the host key names the onnxruntime version: an upgrade measures again', () => {
  const key = hostKey({ provider: 'cpu', intraOpThreads: 1, replicas: 2 });
  assert.match(key, /\|ort=\d+\.\d+\.\d+\|provider=cpu\|intraOp=1\|replicas=2$/);
});
