// The model store on real files: content-addressed revisions, their states and gates, activation and rollback,
// bounded history, and clear errors for a store that cannot be read or a request it cannot take.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ModelStore, revisionOf } from '../../../runtime/model-store.js';
import { tempDir } from '../../helpers.js';

const who = { who: 'test', why: 'because' };
const bytes = (n: number) => new Uint8Array([1, 2, 3, n]);

function open(dir = tempDir(), keepRevisions = 5) {
  let t = Date.UTC(2026, 0, 1);
  const store = ModelStore.open(dir, { keepRevisions, maxFileBytes: 1024, wallNow: () => (t += 1000) });
  return { dir, store };
}

function addActive(store: ModelStore, n: number): string {
  const { revision } = store.add('digits', 'large', bytes(n), 'upload', who);
  store.recordGate('digits', 'large', revision, { gate: 'load', passed: true, detail: 'ok' });
  store.activate('digits', 'large', revision, who);
  return revision;
}

describe('model store', () => {
  test('an empty directory is an empty store, created only on the first write', () => {
    const { dir, store } = open(join(tempDir(), 'store'));
    assert.equal(store.activeFile('digits', 'large'), undefined);
    assert.equal(existsSync(dir), false);
    addActive(store, 1);
    assert.equal(existsSync(join(dir, 'state.json')), true);
  });

  test('a revision is named by the sha256 of its bytes and stored by it, read-only', () => {
    const { store } = open();
    const r = store.add('digits', 'large', bytes(1), 'upload', who);
    assert.equal(r.revision, revisionOf(bytes(1)));
    assert.match(r.revision, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(new Uint8Array(readFileSync(r.path)), bytes(1));
    assert.equal(store.describe('digits', 'large').revisions[0]?.state, 'gating');
  });

  test('activation survives a reopen; the active file again is a no-op', () => {
    const { dir, store } = open();
    const rev = addActive(store, 1);
    const again = ModelStore.open(dir, { keepRevisions: 5, maxFileBytes: 1024 });
    assert.equal(again.activeRevision('digits', 'large'), rev);
    assert.deepEqual(new Uint8Array(readFileSync(again.activeFile('digits', 'large') ?? '')), bytes(1));
    const before = again.history().length;
    assert.equal(again.add('digits', 'large', bytes(1), 'upload', who).unchanged, true);
    assert.equal(again.history().length, before, 'nothing recorded');
    assert.deepEqual(
      again.describe('digits', 'large').revisions[0]?.gates.map((g) => [g.gate, g.passed]),
      [['load', true]],
    );
  });

  test('a second deploy while one is gating is refused, naming the one in progress', () => {
    const { store } = open();
    const first = store.add('digits', 'large', bytes(1), 'upload', who);
    assert.throws(
      () => store.add('digits', 'large', bytes(2), 'upload', who),
      (e: Error & { code?: string }) =>
        e.code === 'SLOGATE_ERR_DEPLOY_IN_PROGRESS' && e.message.includes(first.revision),
    );
    store.reject('digits', 'large', first.revision, who);
    assert.equal(store.add('digits', 'large', bytes(2), 'upload', who).unchanged, false);
  });

  test('a rejected revision changes nothing that serves and cannot be activated', () => {
    const { store } = open();
    const good = addActive(store, 1);
    const bad = store.add('digits', 'large', bytes(2), 'upload', who).revision;
    store.recordGate('digits', 'large', bad, { gate: 'accuracy', passed: false, detail: '0.80 < 0.90' });
    store.reject('digits', 'large', bad, who);
    assert.equal(store.activeRevision('digits', 'large'), good);
    assert.throws(() => store.activate('digits', 'large', bad, who), { code: 'SLOGATE_ERR_REVISION_REJECTED' });
    assert.throws(() => store.rollbackTarget('digits', 'large', bad), { code: 'SLOGATE_ERR_REVISION_REJECTED' });
  });

  test('rollback returns to the previous active revision, or to a named one', () => {
    const { store } = open();
    const a = addActive(store, 1);
    assert.throws(() => store.rollbackTarget('digits', 'large'), { code: 'SLOGATE_ERR_REVISION_NOT_FOUND' });
    const b = addActive(store, 2);
    const c = addActive(store, 3);
    assert.equal(store.rollbackTarget('digits', 'large'), b);
    store.activate('digits', 'large', b, who, 'rollback');
    assert.equal(store.rollbackTarget('digits', 'large'), c, 'then back to the one it replaced');
    assert.equal(store.rollbackTarget('digits', 'large', a), a);
    const last = store.history('digits').at(-1);
    assert.deepEqual([last?.action, last?.revision, last?.previous], ['rollback', b, c]);
    assert.throws(() => store.rollbackTarget('digits', 'large', `sha256:${'0'.repeat(64)}`), {
      code: 'SLOGATE_ERR_REVISION_NOT_FOUND',
    });
  });

  test('keeps the active revision and the newest N others; deletes the rest and their files', () => {
    const { dir, store } = open(tempDir(), 2);
    const revs = [1, 2, 3, 4, 5].map((n) => addActive(store, n));
    const kept = store.describe('digits', 'large').revisions.map((r) => r.revision);
    assert.deepEqual(kept, revs.slice(2), 'active (5) plus the two before it');
    const files = readdirSync(join(dir, 'blobs', 'sha256')).sort();
    assert.deepEqual(files, kept.map((r) => r.slice('sha256:'.length)).sort());
  });

  test('refuses files over maxFileBytes and names that are not plain names', () => {
    const { store } = open();
    assert.throws(() => store.add('digits', 'large', new Uint8Array(1025), 'upload', who), {
      code: 'SLOGATE_ERR_REVISION_TOO_LARGE',
    });
    for (const name of ['../x', '.hidden', '', 'a/b', 'x'.repeat(129)])
      assert.throws(
        () => store.add('digits', name, bytes(1), 'upload', who),
        { code: 'SLOGATE_ERR_INVALID_NAME' },
        name,
      );
  });

  test('a revision left gating by a restart is rejected on open, freeing the variant', () => {
    const { dir, store } = open();
    const r = store.add('digits', 'large', bytes(1), 'upload', who).revision;
    const again = ModelStore.open(dir, { keepRevisions: 5, maxFileBytes: 1024 });
    const rec = again.describe('digits', 'large').revisions[0];
    assert.equal(rec?.state, 'rejected');
    assert.equal(rec?.gates.at(-1)?.detail, 'interrupted by a restart');
    assert.equal(again.history().at(-1)?.revision, r);
    assert.equal(again.add('digits', 'large', bytes(2), 'upload', who).unchanged, false);
  });

  test('a state file that cannot be read, or is not a state, or misses an active file, is a start-up error', () => {
    const cases: [string, (dir: string) => void][] = [
      ['truncated JSON', (d) => writeFileSync(join(d, 'state.json'), '{"version": 1, "vari')],
      ['wrong shape', (d) => writeFileSync(join(d, 'state.json'), '{"version": 2, "variants": {}, "history": []}')],
      ['missing file', (d) => rmSync(join(d, 'blobs'), { recursive: true })],
    ];
    for (const [name, spoil] of cases) {
      const { dir, store } = open();
      addActive(store, 1);
      spoil(dir);
      assert.throws(
        () => ModelStore.open(dir, { keepRevisions: 5, maxFileBytes: 1024 }),
        { code: 'SLOGATE_ERR_STORE' },
        name,
      );
    }
  });
});
