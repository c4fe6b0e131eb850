// The store's side of rollouts: a revision in a rollout blocks another deploy, is recorded when rolled back, and a
// restart in the middle of a rollout serves the active revision and marks the candidate rolled back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelStore } from '../../../runtime/model-store.js';
import { tempDir } from '../../helpers.js';

const who = { who: 'test', why: 'because' };
const bytes = (n: number) => new Uint8Array([1, 2, 3, n]);
const options = { keepRevisions: 5, maxFileBytes: 1024 };

function withCanary() {
  const dir = tempDir();
  const store = ModelStore.open(dir, options);
  const active = store.add('digits', 'small', bytes(1), 'upload', who).revision;
  store.activate('digits', 'small', active, who);
  const candidate = store.add('digits', 'small', bytes(2), 'upload', who).revision;
  store.markRollout('digits', 'small', candidate, 'canary', who);
  return { dir, store, active, candidate };
}

describe('model store rollouts', () => {
  test('a revision in a rollout refuses another deploy of the variant', () => {
    const { store } = withCanary();
    assert.throws(
      () => store.add('digits', 'small', bytes(3), 'upload', who),
      (e: Error & { code?: string }) => e.code === 'SLOGATE_ERR_DEPLOY_IN_PROGRESS' && /rolled out/.test(e.message),
    );
  });

  test('rolled back: recorded in the state and the history; not a rollback target', () => {
    const { store, candidate } = withCanary();
    store.markRollout('digits', 'small', candidate, 'rolled-back', { who: 'slogate', why: 'p99 31.2 ms vs 12.1 ms' });
    assert.equal(
      store.describe('digits', 'small').revisions.find((r) => r.revision === candidate)?.state,
      'rolled-back',
    );
    assert.equal(store.history('digits').at(-1)?.why, 'p99 31.2 ms vs 12.1 ms');
    assert.throws(() => store.rollbackTarget('digits', 'small', candidate), /rolled-back/);
  });

  test('a restart mid-rollout serves the active revision and marks the rollout aborted', () => {
    const { dir, active, candidate } = withCanary();
    const again = ModelStore.open(dir, options);
    assert.equal(again.activeRevision('digits', 'small'), active);
    assert.equal(
      again.describe('digits', 'small').revisions.find((r) => r.revision === candidate)?.state,
      'rolled-back',
    );
    assert.equal(again.history('digits').at(-1)?.why, 'rollout aborted by a restart');
    // The variant takes deploys again.
    assert.equal(again.add('digits', 'small', bytes(3), 'upload', who).unchanged, false);
  });
});
