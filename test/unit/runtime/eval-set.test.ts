import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadEvalSet, parseEvalSet, parseEvalSetInSlices, readEvalSet } from '../../../runtime/eval-set.js';
import { tempDir } from '../../helpers.js';

/** An eval file of `count` rows of `features` values (u16 = row * 7 + column, scale 1000), labels row % 10. */
function evalFile(count: number, features: number): Uint8Array {
  const dataAt = Math.ceil((24 + count) / 8) * 8;
  const buf = new Uint8Array(dataAt + count * features * 2);
  buf.set(Buffer.from('SLGEVAL1', 'latin1'), 0);
  const view = new DataView(buf.buffer);
  view.setUint32(8, count, true);
  view.setUint32(12, features, true);
  view.setUint32(16, 1000, true);
  for (let r = 0; r < count; r++) {
    buf[24 + r] = r % 10;
    for (let c = 0; c < features; c++) view.setUint16(dataAt + 2 * (r * features + c), r * 7 + c, true);
  }
  return buf;
}

describe('eval set', () => {
  test('parse decodes labels and fixed-point values', () => {
    const set = parseEvalSet(evalFile(3, 4));
    assert.equal(set.count, 3);
    assert.equal(set.features, 4);
    assert.deepEqual([...set.labels], [0, 1, 2]);
    assert.equal(set.data[2 * 4 + 3], Math.fround((2 * 7 + 3) / 1000));
  });

  test('loadEvalSet reads the same set as readEvalSet', async () => {
    const path = join(tempDir('slogate-eval-'), 'eval.bin');
    writeFileSync(path, evalFile(300, 5));
    const loaded = await loadEvalSet(path);
    const read = readEvalSet(path);
    assert.equal(loaded.count, 300);
    assert.deepEqual([...loaded.labels], [...read.labels]);
    assert.deepEqual([...loaded.data], [...read.data]);
  });

  test('in slices, it pauses between every 64 rows and converts the same values', async () => {
    const file = evalFile(300, 5);
    let pauses = 0;
    const set = await parseEvalSetInSlices(file, 'test', async () => {
      pauses++;
    });
    assert.equal(pauses, 4, '300 rows: 5 slices');
    assert.deepEqual([...set.data], [...parseEvalSet(file).data]);
  });

  test('a file that is not an eval set is refused, read either way', async () => {
    const path = join(tempDir('slogate-eval-'), 'bad.bin');
    writeFileSync(path, new Uint8Array(40));
    assert.throws(() => readEvalSet(path), { code: 'SLOGATE_ERR_MODEL_LOAD' });
    await assert.rejects(loadEvalSet(path), { code: 'SLOGATE_ERR_MODEL_LOAD' });
    await assert.rejects(loadEvalSet(join(path, 'missing')), { code: 'SLOGATE_ERR_MODEL_LOAD' });
  });
});
