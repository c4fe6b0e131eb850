import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GoldenFiles } from '../../../runtime/golden-file.js';
import { tempDir } from '../../helpers.js';

const golden = (data: number[]) =>
  JSON.stringify({
    cases: [
      {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, data.length], data }],
        expect: { output: 'y', argmax: [0] },
      },
    ],
  });

describe('GoldenFiles', () => {
  test('parses a file once, and again once it changed', () => {
    const path = join(tempDir('slogate-golden-'), 'golden.json');
    writeFileSync(path, golden([1, 2]));
    const files = new GoldenFiles();
    const first = files.read(path);
    assert.deepEqual(first.cases[0]?.inputs[0]?.data, [1, 2]);
    assert.equal(files.read(path), first, 'the same parse, not a new one');
    writeFileSync(path, golden([1, 2, 3]));
    assert.deepEqual(files.read(path).cases[0]?.inputs[0]?.data, [1, 2, 3]);
  });

  test('a missing or invalid file is a config error, each time it is read', () => {
    const dir = tempDir('slogate-golden-');
    const files = new GoldenFiles();
    assert.throws(() => files.read(join(dir, 'missing.json')), { code: 'SLOGATE_ERR_CONFIG' });
    writeFileSync(join(dir, 'bad.json'), '{"cases": []}');
    assert.throws(() => files.read(join(dir, 'bad.json')), { code: 'SLOGATE_ERR_CONFIG' });
    assert.throws(() => files.read(join(dir, 'bad.json')), { code: 'SLOGATE_ERR_CONFIG' });
  });
});
