// Describing client values for error messages: bounded length and depth whatever the value, where JSON.stringify
// overflows the stack on deep nesting and echoes megabytes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clipText, DESCRIBED_VALUE_CHARS, describeValue } from '../../../core/describe-value.js';

const deepArray = (depth: number): unknown => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);
const deepObject = (depth: number): unknown => JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

describe('describeValue', () => {
  test('scalars print as JSON would', () => {
    assert.equal(describeValue(null), 'null');
    assert.equal(describeValue(1.5), '1.5');
    assert.equal(describeValue(false), 'false');
    assert.equal(describeValue('FP32'), '"FP32"');
    assert.equal(describeValue(undefined), 'undefined');
  });

  test('small containers print their contents; deeper levels and longer lists are abridged', () => {
    assert.equal(describeValue([]), '[]');
    assert.equal(describeValue({}), '{}');
    assert.equal(describeValue([1, [2, [3]]]), '[1,[2,[...]]]');
    assert.equal(describeValue([1, 2, 3, 4, 5, 6]), '[1,2,3,4,...]');
    assert.equal(describeValue({ a: 1 }), '{"a":1}');
    assert.equal(describeValue({ a: { b: { c: 1 } } }), '{"a":{"b":{...}}}');
  });

  test('values nested two hundred thousand deep are described without overflowing the stack', () => {
    assert.throws(() => JSON.stringify(deepArray(200_000)), RangeError, 'the hazard this guards against');
    assert.equal(describeValue(deepArray(200_000)), '[[[...]]]');
    assert.equal(describeValue(deepObject(200_000)), '{"a":{"a":{...}}}');
  });

  test('the description never exceeds its bound, for long strings, keys and wide containers', () => {
    const wide = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`key-${'k'.repeat(1000)}-${i}`, i]));
    for (const v of ['x'.repeat(1e6), ['y'.repeat(1e6)], wide, new Array(1e5).fill('z'.repeat(100))]) {
      const d = describeValue(v);
      assert.ok(d.length <= DESCRIBED_VALUE_CHARS + 3, `${d.length} chars: ${d}`);
    }
  });

  test('an own __proto__ key (as JSON.parse makes it) is described as data, not as the prototype', () => {
    assert.equal(describeValue(JSON.parse('{"__proto__":7}')), '{"__proto__":7}');
  });
});

describe('clipText', () => {
  test('short text is kept; long text keeps its start and says how long it was', () => {
    assert.equal(clipText('pixels'), 'pixels');
    assert.equal(clipText('abcdef', 3), 'abc... (6 chars)');
  });
});
