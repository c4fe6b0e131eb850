// Batches through shared memory with a real worker and onnxruntime session answer exactly what the port answers:
// several rows, several batches at once (more than there are slots), rows handed over unstacked, a batch larger than
// a slot, and a failed run with its error code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SystemClock } from '../../core/clock.js';
import { revisionOf } from '../../runtime/model-store.js';
import { type BatchOutcome, type BatchTask, LocalReplica } from '../../runtime/replica.js';
import { DEFAULT_LAYOUT } from '../../runtime/worker/shared-slots.js';
import { DIGITS_DIR } from '../helpers.js';

const SMALL = join(DIGITS_DIR, 'small.onnx');
const FAILS = join(DIGITS_DIR, 'revisions', 'small-fails-on-negative.onnx');
const ROW = 784;

function replica(sharedSlots: boolean): LocalReplica {
  return new LocalReplica(
    {
      replicaId: sharedSlots ? 'slots' : 'port',
      variants: [
        { model: 'digits', variant: 'small', path: SMALL, revision: revisionOf(readFileSync(SMALL)) },
        { model: 'digits', variant: 'fails', path: FAILS, revision: revisionOf(readFileSync(FAILS)) },
      ],
      device: 'cpu',
      intraOpThreads: 1,
    },
    { clock: new SystemClock(), respawn: { initialMs: 10, maxMs: 50 }, sharedSlots },
  );
}

function rows(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n * ROW }, (_, i) => ((i * 7919 + seed * 104729) % 1000) / 1000);
}

const task = (data: Float32Array, variant = 'small'): BatchTask => ({
  model: 'digits',
  variant,
  inputs: [{ name: 'pixels', datatype: 'FP32', shape: [data.length / ROW, ROW], data }],
  rows: data.length / ROW,
  transfer: false,
});

const plain = (o: BatchOutcome) => o.outputs.map((t) => ({ ...t, data: Array.from(t.data as Float32Array) }));

describe('batches in shared memory', () => {
  const slots = replica(true);
  const port = replica(false);
  before(async () => {
    await Promise.all([slots.start(), port.start()]);
  });
  after(async () => {
    await Promise.all([slots.close(), port.close()]);
  });

  test('answer what the port answers, for one batch and for more at once than there are slots', async () => {
    const batches = Array.from({ length: DEFAULT_LAYOUT.slots + 2 }, (_, i) => rows(1 + (i % 5), i));
    const viaSlots = await Promise.all(batches.map((b) => slots.run(task(b))));
    const viaPort = await Promise.all(batches.map((b) => port.run(task(b))));
    assert.deepEqual(slots.handedOver, { slots: DEFAULT_LAYOUT.slots, port: 2 });
    assert.deepEqual(port.handedOver, { slots: 0, port: batches.length });
    for (let i = 0; i < batches.length; i++) {
      const got = plain(viaSlots[i] as BatchOutcome);
      assert.deepEqual(got, plain(viaPort[i] as BatchOutcome));
      assert.deepEqual(
        got.map((o) => [o.name, o.datatype, o.shape]),
        [
          ['logits', 'FP32', [1 + (i % 5), 10]],
          ['label', 'INT64', [1 + (i % 5), 1]],
        ],
      );
    }
  });

  test('rows handed over unstacked are stacked in the slot; the stacked inputs are never built', async () => {
    const parts = [rows(1, 6), rows(3, 7)];
    const stacked = new Float32Array(4 * ROW);
    stacked.set(parts[0] as Float32Array, 0);
    stacked.set(parts[1] as Float32Array, ROW);
    const unstacked: BatchTask = {
      model: 'digits',
      variant: 'small',
      rows: 4,
      transfer: true,
      unstacked: [{ name: 'pixels', datatype: 'FP32', shape: [4, ROW], parts }],
      get inputs(): never {
        return assert.fail('stacked although a slot was free');
      },
    };
    assert.deepEqual(plain(await slots.run(unstacked)), plain(await port.run(task(stacked))));
  });

  test('a batch larger than a slot goes on the port', async () => {
    const n = Math.ceil(DEFAULT_LAYOUT.slotBytes / (ROW * 4)) + 1;
    const big = rows(n, 3);
    const before = slots.handedOver?.port ?? 0;
    assert.deepEqual(plain(await slots.run(task(big))), plain(await port.run(task(big))));
    assert.equal(slots.handedOver?.port, before + 1);
  });

  test('a failed run rejects with its code through the slot', async () => {
    const negative = rows(2, 4).map((v) => -v - 1);
    await assert.rejects(slots.run(task(negative, 'fails')), { code: 'SLOGATE_ERR_INFERENCE_FAILED' });
    // The slot is free again afterwards.
    assert.equal((await slots.run(task(rows(1, 5)))).outputs[0]?.name, 'logits');
  });
});
