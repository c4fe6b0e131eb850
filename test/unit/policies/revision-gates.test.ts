// The deploy gates' decisions, table-driven: the plan, and each judge's pass/fail with its error code.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TensorSpec } from '../../../core/types.js';
import { gatePlan, judgeAccuracy, judgeGolden, judgeLatency, judgeLoad } from '../../../policies/revision-gates.js';

const IN: TensorSpec[] = [{ name: 'pixels', datatype: 'FP32', shape: [-1, 784] }];
const OUT: TensorSpec[] = [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }];

describe('gatePlan', () => {
  for (const [golden, evalSet, plan] of [
    [false, false, ['load', 'latency']],
    [true, false, ['load', 'golden', 'latency']],
    [false, true, ['load', 'accuracy', 'latency']],
    [true, true, ['load', 'golden', 'accuracy', 'latency']],
  ] as const)
    test(`golden ${golden}, eval set ${evalSet}: ${plan.join(' -> ')}`, () => {
      assert.deepEqual(gatePlan({ golden, evalSet }), plan);
    });
});

describe('judgeLoad', () => {
  const sig = { inputs: IN, outputs: OUT };
  const cases: [string, Parameters<typeof judgeLoad>[0], boolean, string | undefined][] = [
    ['every replica matches', [{ replica: 'a', detail: 'ok', signature: sig }], true, undefined],
    ['no replicas', [], false, 'SLOGATE_ERR_MODEL_LOAD'],
    ['not ONNX', [{ replica: 'a', code: 'SLOGATE_ERR_NOT_ONNX', detail: 'protobuf' }], false, 'SLOGATE_ERR_NOT_ONNX'],
    ['a remote replica cannot load', [{ replica: 'r', code: 'X', detail: 'remote' }], false, 'SLOGATE_ERR_MODEL_LOAD'],
    [
      'a runtime node refused it, after a local replica loaded it',
      [
        { replica: 'local-0', detail: 'ok', signature: sig },
        { replica: 'remote-0', code: 'SLOGATE_ERR_NODE_REVISION', detail: 'runtime node remote-0 refused the file' },
      ],
      false,
      'SLOGATE_ERR_NODE_REVISION',
    ],
    [
      'a runtime node found the signature wrong',
      [{ replica: 'remote-0', code: 'SLOGATE_ERR_SIGNATURE_MISMATCH', detail: 'inputs differ' }],
      false,
      'SLOGATE_ERR_SIGNATURE_MISMATCH',
    ],
    [
      'renamed input',
      [
        {
          replica: 'a',
          detail: 'ok',
          signature: { inputs: [{ ...(IN[0] as TensorSpec), name: 'image' }], outputs: OUT },
        },
      ],
      false,
      'SLOGATE_ERR_SIGNATURE_MISMATCH',
    ],
    [
      'fixed batch dimension',
      [
        {
          replica: 'a',
          detail: 'ok',
          signature: { inputs: IN, outputs: [{ name: 'logits', datatype: 'FP32', shape: [1, 10] }] },
        },
      ],
      false,
      'SLOGATE_ERR_SIGNATURE_MISMATCH',
    ],
    [
      'one of two replicas differs',
      [
        { replica: 'a', detail: 'ok', signature: sig },
        { replica: 'b', detail: 'ok', signature: { inputs: IN, outputs: [] } },
      ],
      false,
      'SLOGATE_ERR_SIGNATURE_MISMATCH',
    ],
  ];
  for (const [name, loads, passed, code] of cases)
    test(name, () => {
      const v = judgeLoad(loads, sig);
      assert.equal(v.passed, passed);
      assert.equal(v.code, code);
    });
});

describe('judgeAccuracy', () => {
  const cases: [string, Parameters<typeof judgeAccuracy>[0], boolean][] = [
    ['equal to the active', { measured: 0.9365, minAccuracy: undefined, active: 0.9365, maxDrop: 0.005 }, true],
    ['within the drop', { measured: 0.932, minAccuracy: undefined, active: 0.9365, maxDrop: 0.005 }, true],
    ['just past the drop', { measured: 0.931, minAccuracy: undefined, active: 0.9365, maxDrop: 0.005 }, false],
    ['degraded', { measured: 0.8505, minAccuracy: undefined, active: 0.9365, maxDrop: 0.005 }, false],
    ['minAccuracy wins over the drop', { measured: 0.91, minAccuracy: 0.9, active: 0.9365, maxDrop: 0.005 }, true],
    ['under minAccuracy', { measured: 0.85, minAccuracy: 0.9, active: 0.8, maxDrop: 0.005 }, false],
    ['no floor known', { measured: 0.1, minAccuracy: undefined, active: undefined, maxDrop: 0.005 }, true],
  ];
  for (const [name, input, passed] of cases)
    test(name, () => {
      const v = judgeAccuracy(input);
      assert.equal(v.passed, passed);
      assert.equal(v.value, input.measured);
      assert.equal(v.code, passed ? undefined : 'SLOGATE_ERR_GATE_FAILED');
    });
});

describe('judgeLatency', () => {
  const sweep = (ms: number[], hopMs = 0.1) => ({
    points: ms.map((p, i) => ({ rows: 2 ** i, p50Ms: p + hopMs })),
    hopMs,
  });
  const cases: [string, number[], number[], boolean][] = [
    ['same', [0.1, 0.2, 0.4], [0.1, 0.2, 0.4], true],
    ['twice as slow', [0.2, 0.4, 0.8], [0.1, 0.2, 0.4], true],
    ['ten times slower', [1, 2, 4], [0.1, 0.2, 0.4], false],
    ['noise at one row only', [0.5, 0.2, 0.4], [0.01, 0.2, 0.4], true],
    ['slower only at small batches', [2, 0.2, 0.4], [0.1, 0.2, 0.4], true],
    ['slower at the largest batch', [0.1, 0.2, 1.3], [0.1, 0.2, 0.4], false],
    ['faster', [0.05, 0.1, 0.2], [0.1, 0.2, 0.4], true],
  ];
  for (const [name, cand, active, passed] of cases)
    test(name, () => {
      const v = judgeLatency(sweep(cand), sweep(active, 0.3), 3);
      assert.equal(v.passed, passed, v.detail);
    });
  test('nothing measured for both fails', () => {
    assert.equal(judgeLatency(sweep([]), sweep([0.1]), 3).passed, false);
  });
});

describe('judgeGolden', () => {
  const logits = (rows: number[][]) => new Map([['logits', Float32Array.from(rows.flat())]]);
  test('the same classes pass; another class, a run error or a missing output fail', () => {
    const want = [{ output: 'logits', argmax: [1, 0] }];
    assert.equal(
      judgeGolden(want, [
        logits([
          [0, 5],
          [3, 1],
        ]),
      ]).passed,
      true,
    );
    assert.equal(
      judgeGolden(want, [
        logits([
          [0, 5],
          [1, 3],
        ]),
      ]).passed,
      false,
    );
    assert.equal(judgeGolden(want, [new Error('Reshape')]).passed, false);
    assert.equal(judgeGolden(want, [new Map()]).passed, false);
    assert.equal(judgeGolden(want, []).passed, false);
  });
  test('values within the tolerance pass, beyond it (or NaN) fail', () => {
    const want = [{ output: 'logits', data: [1, 2], atol: 0.01 }];
    assert.equal(judgeGolden(want, [logits([[1.005, 1.995]])]).passed, true);
    assert.equal(judgeGolden(want, [logits([[1.02, 2]])]).passed, false);
    assert.equal(judgeGolden(want, [logits([[Number.NaN, 2]])]).passed, false);
  });
});
