import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { evictions, RevisionCache } from '../../../runtime/revision-cache.js';
import { tempDir } from '../../helpers.js';

const rev = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const name = (i: number) => `sha256:${String(i).padStart(64, '0')}`;

describe('evictions', () => {
  const files = [3, 1, 2, 4].map((i) => ({ revision: name(i), mtimeMs: i * 10 }));
  const cases: [string, number, string[], string[]][] = [
    ['under the bound: nothing', 4, [], []],
    ['over it: the oldest first', 2, [], [name(1), name(2)]],
    ['a file in use is kept, the next oldest goes', 2, [name(1)], [name(2), name(3)]],
    ['everything in use: nothing, even over the bound', 1, [1, 2, 3, 4].map(name), []],
  ];
  for (const [what, max, inUse, out] of cases)
    test(what, () => assert.deepEqual(evictions(files, max, new Set(inUse)), out));
});

describe('RevisionCache', () => {
  test('stores bytes only under their own hash, once, and bounded in files', () => {
    const cache = new RevisionCache({ dir: tempDir('slogate-cache-'), maxFileBytes: 100, maxFiles: 2 });
    const a = new Uint8Array([1, 2, 3]);
    assert.equal(cache.has(rev(a)), false);
    assert.equal(cache.put(rev(a), a, new Set()), true);
    assert.equal(cache.put(rev(a), a, new Set()), false, 'already there');
    assert.equal(cache.received, 1);
    assert.deepEqual(new Uint8Array(readFileSync(cache.path(rev(a)))), a);
    const b = new Uint8Array([4]);
    const c = new Uint8Array([5]);
    cache.put(rev(b), b, new Set([rev(a)]));
    cache.put(rev(c), c, new Set([rev(a)]));
    const kept = cache.list().map((f) => f.revision);
    assert.equal(kept.length, 2, 'bounded to two files');
    assert.ok(kept.includes(rev(a)), 'the one in use stays');
  });

  test('refuses a hash that does not match, a file over the limit, a name that is not a sha256', () => {
    const cache = new RevisionCache({ dir: tempDir('slogate-cache-'), maxFileBytes: 4, maxFiles: 2 });
    assert.throws(() => cache.put(name(1), new Uint8Array([1]), new Set()), {
      code: 'SLOGATE_ERR_REVISION_HASH_MISMATCH',
    });
    const big = new Uint8Array(5);
    assert.throws(() => cache.put(rev(big), big, new Set()), { code: 'SLOGATE_ERR_REVISION_TOO_LARGE' });
    assert.throws(() => cache.put('sha256:../../etc', new Uint8Array([1]), new Set()), {
      code: 'SLOGATE_ERR_BAD_REQUEST',
    });
    assert.throws(() => cache.path(name(2)), { code: 'SLOGATE_ERR_REVISION_NOT_FOUND' });
    assert.deepEqual(cache.list(), []);
  });
});
