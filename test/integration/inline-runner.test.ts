// Inline batches on a real local replica: a qualifying batch runs on the main thread once its session has loaded
// (the worker answers meanwhile) and answers what the worker does; batches over the bound, without a prediction or
// for a candidate revision stay on the worker; after an activation nothing runs on the old file inline; a failing
// run is the request's error, as on the worker; runNow runs a qualifying batch before it returns.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SystemClock } from '../../core/clock.js';
import { InlineRunner } from '../../runtime/inline-runner.js';
import { revisionOf } from '../../runtime/model-store.js';
import { type BatchOutcome, type BatchTask, LocalReplica } from '../../runtime/replica.js';
import { DIGITS_DIR, ROOT } from '../helpers.js';

const SMALL = join(DIGITS_DIR, 'small.onnx');
const TINY = join(DIGITS_DIR, 'tiny.onnx');
const FAILS = join(DIGITS_DIR, 'revisions', 'small-fails-on-negative.onnx');
const rev = (path: string) => revisionOf(readFileSync(path));
const task = (o: { expectedMs?: number; revision?: string; fill?: number } = {}): BatchTask => ({
  model: 'digits',
  variant: 'small',
  inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 784], data: new Float32Array(2 * 784).fill(o.fill ?? 0.3) }],
  rows: 2,
  transfer: false,
  revision: o.revision,
  expectedMs: o.expectedMs ?? 0.05,
});
const logits = (o: BatchOutcome) => Array.from(o.outputs[0]?.data as Float32Array);

/** Runs qualifying batches until one runs inline (its session loads in the background), at most 5 s. */
async function untilInline(replica: LocalReplica, t: () => BatchTask): Promise<BatchOutcome[]> {
  const seen: BatchOutcome[] = [];
  for (const stop = Date.now() + 5000; Date.now() < stop; ) {
    const o = await replica.run(t());
    seen.push(o);
    if (o.inline === true) return seen;
    await sleep(10);
  }
  assert.fail(`no batch ran inline in 5 s (${seen.length} tried)`);
}

describe('inline batches on a local replica', () => {
  const inline = new InlineRunner(0.2);
  const replica = new LocalReplica(
    {
      replicaId: 'w',
      variants: [{ model: 'digits', variant: 'small', path: SMALL, revision: rev(SMALL) }],
      device: 'cpu',
      intraOpThreads: 1,
    },
    { clock: new SystemClock(), respawn: { initialMs: 10, maxMs: 50 }, inline },
  );
  before(async () => {
    await replica.start();
  });
  after(async () => {
    await replica.close();
    inline.close();
  });

  test('a qualifying batch runs on the worker until the session loads, then inline, with the same answer', async () => {
    const seen = await untilInline(replica, () => task());
    assert.equal(seen[0]?.inline, undefined, 'the first qualifying batch starts the load and runs on the worker');
    const worker = seen[0] as BatchOutcome;
    const inlined = seen.at(-1) as BatchOutcome;
    assert.deepEqual(inlined.outputs[0]?.shape, [2, 10]);
    assert.deepEqual(logits(inlined), logits(worker));
    assert.equal(inline.batches, 1);
  });

  test('runNow answers a qualifying batch before it returns, as run() does; anything else it leaves', async () => {
    await untilInline(replica, () => task());
    const before = inline.batches;
    const now = replica.runNow(task());
    assert.equal(now?.inline, true);
    assert.deepEqual(logits(now as BatchOutcome), logits(await replica.run(task())));
    assert.equal(replica.outstanding, 0);
    assert.equal(replica.runNow(task({ expectedMs: 0.3 })), undefined);
    assert.equal(replica.runNow({ ...task(), expectedMs: undefined }), undefined);
    assert.equal(inline.batches, before + 2);
  });

  test('over the bound, without a prediction, or for a candidate: the worker', async () => {
    await untilInline(replica, () => task());
    const before = inline.batches;
    await replica.revision({ kind: 'load', model: 'digits', variant: 'small', revision: rev(TINY), path: TINY });
    const outcomes = [
      await replica.run(task({ expectedMs: 0.3 })),
      await replica.run({ ...task(), expectedMs: undefined }),
      await replica.run(task({ revision: rev(TINY) })),
    ];
    assert.deepEqual(
      outcomes.map((o) => o.inline),
      [undefined, undefined, undefined],
    );
    assert.equal(inline.batches, before);
    await replica.revision({ kind: 'unload', model: 'digits', variant: 'small', revision: rev(TINY) });
  });

  test('after an activation no batch runs the old file inline; the new one runs inline once loaded', async () => {
    await untilInline(replica, () => task());
    const tinyAnswer = logits(
      await (async () => {
        await replica.revision({ kind: 'load', model: 'digits', variant: 'small', revision: rev(TINY), path: TINY });
        return replica.run(task({ revision: rev(TINY) }));
      })(),
    );
    await replica.revision({ kind: 'activate', model: 'digits', variant: 'small', revision: rev(TINY) });
    const seen = await untilInline(replica, () => task());
    for (const o of seen) assert.deepEqual(logits(o), tinyAnswer);
  });

  test('a run that fails inline is the request error the worker gives', async () => {
    await replica.revision({ kind: 'load', model: 'digits', variant: 'small', revision: rev(FAILS), path: FAILS });
    await replica.revision({ kind: 'activate', model: 'digits', variant: 'small', revision: rev(FAILS) });
    await untilInline(replica, () => task());
    const onWorker = await replica.run(task({ fill: -1, expectedMs: 5 })).catch((e: { code?: string }) => e.code);
    const inlined = await replica.run(task({ fill: -1 })).catch((e: { code?: string }) => e.code);
    assert.equal(onWorker, 'SLOGATE_ERR_INFERENCE_FAILED');
    assert.equal(inlined, onWorker);
    assert.throws(() => replica.runNow(task({ fill: -1 })), { code: onWorker });
    assert.equal(replica.outstanding, 0);
  });
});

describe('inline batches that could hold the event loop', () => {
  const SPIN = join(ROOT, 'test', 'fixtures', 'spin.onnx');
  const spinTask = (n: number): BatchTask => ({
    model: 'spin',
    variant: 'spin',
    inputs: [{ name: 'n', datatype: 'INT64', shape: [1], data: new BigInt64Array([BigInt(n)]) }],
    rows: 1,
    transfer: false,
    expectedMs: 0.01,
  });
  const start = async (inline: InlineRunner) => {
    const replica = new LocalReplica(
      {
        replicaId: 'w',
        variants: [
          { model: 'digits', variant: 'small', path: SMALL, revision: rev(SMALL) },
          { model: 'spin', variant: 'spin', path: SPIN, revision: rev(SPIN) },
        ],
        device: 'cpu',
        intraOpThreads: 1,
      },
      { clock: new SystemClock(), respawn: { initialMs: 10, maxMs: 50 }, inline },
    );
    await replica.start();
    return replica;
  };

  test('a graph whose run time its input sets (a Loop) stays on the worker, however cheap its prediction', async () => {
    const inline = new InlineRunner(0.2);
    const replica = await start(inline);
    try {
      await untilInline(replica, () => task());
      const before = inline.batches;
      for (let i = 0; i < 20; i++) {
        const o = await replica.run(spinTask(i));
        assert.equal(o.inline, undefined, `spin batch ${i} ran inline`);
        assert.equal(Array.from(o.outputs[0]?.data as Float32Array)[0], i);
        await sleep(10);
      }
      assert.equal(inline.batches, before);
    } finally {
      await replica.close();
      inline.close();
    }
  });

  test('a run far past the bound sends the variant back to the worker for good', async () => {
    const told: string[] = [];
    const inline = new InlineRunner(0.2, { runawayMs: 0, onBarred: (m, v, ms) => told.push(`${m}/${v}`, typeof ms) });
    const replica = await start(inline);
    try {
      const seen = await untilInline(replica, () => task());
      assert.deepEqual(inline.barred, ['digits/small']);
      assert.deepEqual(told, ['digits/small', 'number']);
      const after = await Promise.all([1, 2, 3].map(() => replica.run(task())));
      assert.deepEqual(
        after.map((o) => o.inline),
        [undefined, undefined, undefined],
      );
      assert.deepEqual(logits(after[0] as BatchOutcome), logits(seen.at(-1) as BatchOutcome));
      assert.equal(inline.batches, 1);
    } finally {
      await replica.close();
      inline.close();
    }
  });
});
