// The op types of ONNX files read from their protobuf bytes: the bundled models and fixtures, and hand-encoded models
// with a Loop nested in an If branch and in a local function; damaged bytes count as data-dependent.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasDataDependentCost, onnxOpTypes } from '../../../runtime/onnx-ops.js';
import { DIGITS_DIR, ROOT } from '../../helpers.js';

const fixture = (name: string) => readFileSync(join(ROOT, 'test', 'fixtures', name));

/** Protobuf encoding, just enough for the messages below. */
function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
}
const len = (field: number, body: number[]): number[] => [...varint(field * 8 + 2), ...varint(body.length), ...body];
const str = (field: number, s: string): number[] => len(field, [...Buffer.from(s)]);
const int = (field: number, n: number): number[] => [...varint(field * 8), ...varint(n)];
const node = (op: string, ...attributes: number[][]): number[] => [
  ...str(1, 'x'),
  ...str(4, op),
  ...attributes.flatMap((a) => len(5, a)),
];
const graph = (...nodes: number[][]): number[] => [...nodes.flatMap((n) => len(1, n)), ...str(2, 'g')];
const model = (...fields: number[][]): Uint8Array => Uint8Array.from([...int(1, 8), ...fields.flat()]);

test('the bundled models and the add fixture are straight-line graphs', () => {
  for (const name of ['tiny', 'small', 'medium', 'medium-int8', 'cnn-small', 'large']) {
    const bytes = readFileSync(join(DIGITS_DIR, `${name}.onnx`));
    const ops = onnxOpTypes(bytes);
    assert.ok(ops.size > 0, `${name}: some ops`);
    assert.equal(hasDataDependentCost(bytes), false, `${name}: ${[...ops].join(',')}`);
  }
  assert.deepEqual([...onnxOpTypes(fixture('add-two.onnx'))], ['Add']);
});

test('the spin fixture iterates as its input says: its Loop and the body inside it are found', () => {
  const ops = onnxOpTypes(fixture('spin.onnx'));
  assert.deepEqual([...ops].sort(), ['Add', 'Identity', 'Loop', 'Squeeze']);
  assert.equal(hasDataDependentCost(fixture('spin.onnx')), true);
});

test('a Loop inside an If branch or a local function counts; other ops do not', () => {
  const branch = graph(node('Loop'));
  const nested = model(len(7, graph(node('Relu'), node('If', [...str(1, 'then_branch'), ...len(6, branch)]))));
  assert.deepEqual([...onnxOpTypes(nested)].sort(), ['If', 'Loop', 'Relu']);
  assert.equal(hasDataDependentCost(nested), true);
  const inGraphs = model(len(7, graph(node('If', [...str(1, 'b'), ...len(11, graph(node('Scan')))]))));
  assert.equal(hasDataDependentCost(inGraphs), true);
  const inFunction = model(len(7, graph(node('MyFn'))), len(25, [...str(1, 'MyFn'), ...len(7, node('Loop'))]));
  assert.equal(hasDataDependentCost(inFunction), true);
  const straight = model(len(7, graph(node('If', [...str(1, 'b'), ...len(6, graph(node('Relu')))]))));
  assert.equal(hasDataDependentCost(straight), false);
});

test('bytes that are not a model throw, and count as data-dependent', () => {
  const bytes = fixture('add-two.onnx');
  for (const damaged of [bytes.subarray(0, bytes.length - 3), Buffer.from('not an onnx model'), Buffer.from([0xff])]) {
    assert.throws(() => onnxOpTypes(damaged));
    assert.equal(hasDataDependentCost(damaged), true);
  }
});
