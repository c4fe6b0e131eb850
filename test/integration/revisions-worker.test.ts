// The worker's side of a switch: a candidate loads beside the active session and runs only when asked for by
// revision; activation sends new batches to it and releases the old session once no batch runs on it; a worker
// replaced after the switch loads the revision active then.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SystemClock } from '../../core/clock.js';
import { revisionOf } from '../../runtime/model-store.js';
import { type BatchTask, LocalReplica } from '../../runtime/replica.js';
import type { RevisionResult } from '../../runtime/worker/messages.js';
import { DIGITS_DIR } from '../helpers.js';

const SMALL = join(DIGITS_DIR, 'small.onnx');
const REEXPORT = join(DIGITS_DIR, 'revisions', 'small-reexport.onnx');
const FAILS = join(DIGITS_DIR, 'revisions', 'small-fails-at-run.onnx');
const rev = (path: string) => revisionOf(readFileSync(path));
const task = (revision?: string): BatchTask => ({
  model: 'digits',
  variant: 'small',
  inputs: [{ name: 'pixels', datatype: 'FP32', shape: [2, 784], data: new Float32Array(2 * 784).fill(0.3) }],
  rows: 2,
  transfer: false,
  revision,
});
const sessions = (r: RevisionResult) => (r.ok && r.kind !== 'load' ? [...r.sessions].sort() : r);

describe('revisions in a worker', () => {
  const replica = new LocalReplica(
    {
      replicaId: 'w',
      variants: [{ model: 'digits', variant: 'small', path: SMALL, revision: rev(SMALL) }],
      device: 'cpu',
      intraOpThreads: 1,
    },
    { clock: new SystemClock(), respawn: { initialMs: 10, maxMs: 50 } },
  );
  before(async () => {
    await replica.start();
  });
  after(async () => {
    await replica.close();
  });

  test('a loaded candidate runs only by revision; unloading it keeps the active session', async () => {
    const load = await replica.revision({
      kind: 'load',
      model: 'digits',
      variant: 'small',
      revision: rev(FAILS),
      path: FAILS,
    });
    assert.equal(load.ok && load.kind, 'load');
    await assert.rejects(replica.run(task(rev(FAILS))), { code: 'SLOGATE_ERR_INFERENCE_FAILED' });
    assert.equal((await replica.run(task())).outputs[0]?.name, 'logits');
    const unload = await replica.revision({ kind: 'unload', model: 'digits', variant: 'small', revision: rev(FAILS) });
    assert.deepEqual(sessions(unload), [`digits/small@${rev(SMALL)}`]);
  });

  test('activation switches new batches and releases the old session; a replacement worker loads the new one', async () => {
    const before = await replica.run(task());
    await replica.revision({
      kind: 'load',
      model: 'digits',
      variant: 'small',
      revision: rev(REEXPORT),
      path: REEXPORT,
    });
    // Batches queued before the switch finish; the one after it runs on the new session.
    const running = [replica.run(task()), replica.run(task())];
    const done = await replica.revision({
      kind: 'activate',
      model: 'digits',
      variant: 'small',
      revision: rev(REEXPORT),
    });
    assert.deepEqual(sessions(done), [`digits/small@${rev(REEXPORT)}`]);
    for (const r of await Promise.all(running)) assert.deepEqual(r.outputs[0]?.data, before.outputs[0]?.data);
    await assert.rejects(replica.run(task(rev(SMALL))), { code: 'SLOGATE_ERR_VARIANT_NOT_FOUND' });
    await replica.worker?.terminate();
    while (replica.state !== 'ready') await once(replica.events, 'state');
    assert.equal(replica.state, 'ready');
    const loaded = await replica.revision({
      kind: 'unload',
      model: 'digits',
      variant: 'small',
      revision: rev(REEXPORT),
    });
    assert.deepEqual(sessions(loaded), [`digits/small@${rev(REEXPORT)}`]);
  });
});
