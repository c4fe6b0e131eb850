import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { RemoteRevisions } from '../../../runtime/remote-revisions.js';
import { tempDir } from '../../helpers.js';

const REV = `sha256:${'a'.repeat(64)}`;
const FILE = join(tempDir('slogate-rr-'), 'model.onnx');
writeFileSync(FILE, 'bytes');
const SIG = { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [] };

type Reply = { status: number; code?: string; body?: unknown } | Error;

/** A node that answers each `METHOD path` from a table, and records what it was asked. */
function node(table: Record<string, Reply>) {
  const calls: string[] = [];
  const dispatcher = {
    request: async (o: { method: string; path: string }) => {
      const key = `${o.method} ${o.path}`;
      calls.push(key);
      const r = table[key] ?? { status: 404, code: 'SLOGATE_ERR_NOT_FOUND', body: { error: 'no' } };
      if (r instanceof Error) throw r;
      return {
        statusCode: r.status,
        headers: r.code === undefined ? {} : { 'x-slogate-error-code': r.code },
        body: { text: async () => JSON.stringify(r.body ?? {}) },
      };
    },
  } as unknown as ConstructorParameters<typeof RemoteRevisions>[0]['dispatcher'];
  const rr = new RemoteRevisions({ id: 'remote-0', url: 'http://10.0.0.7:8001', dispatcher, timeoutMs: 1000 });
  return { rr, calls };
}

const P = `/admin/node/revisions/${REV}`;
const load = { kind: 'load' as const, model: 'm', variant: 'v', revision: REV, path: FILE };

describe('RemoteRevisions', () => {
  test('a file the node has is not sent; its load answers the signature', async () => {
    const { rr, calls } = node({
      [`HEAD ${P}`]: { status: 200 },
      [`POST ${P}/load`]: { status: 200, body: { signature: SIG } },
    });
    const res = await rr.task(load);
    assert.equal(res.ok && res.kind === 'load' && res.session.inputs[0]?.name, 'x');
    assert.deepEqual(calls, [`HEAD ${P}`, `POST ${P}/load`]);
    assert.deepEqual([rr.uploads, rr.skipped], [0, 1]);
  });

  test('a file the node lacks is sent first', async () => {
    const { rr, calls } = node({
      [`PUT ${P}`]: { status: 201 },
      [`POST ${P}/load`]: { status: 200, body: { signature: SIG } },
    });
    assert.equal((await rr.task(load)).ok, true);
    assert.deepEqual(calls, [`HEAD ${P}`, `PUT ${P}`, `POST ${P}/load`]);
    assert.deepEqual([rr.uploads, rr.skipped], [1, 0]);
  });

  const failures: [string, Record<string, Reply>, string, RegExp][] = [
    [
      'the node refuses the file',
      { [`PUT ${P}`]: { status: 413, code: 'SLOGATE_ERR_REVISION_TOO_LARGE', body: { error: 'over 1000' } } },
      'SLOGATE_ERR_NODE_REVISION',
      /runtime node remote-0 \(http:\/\/10\.0\.0\.7:8001\) refused the file .*413 SLOGATE_ERR_REVISION_TOO_LARGE over 1000/,
    ],
    [
      'the node is unreachable',
      { [`HEAD ${P}`]: new Error('connect ECONNREFUSED') },
      'SLOGATE_ERR_NODE_REVISION',
      /runtime node remote-0 .* did not answer: connect ECONNREFUSED/,
    ],
    [
      "the node's load gate finds the signature wrong",
      {
        [`HEAD ${P}`]: { status: 200 },
        [`POST ${P}/load`]: { status: 422, code: 'SLOGATE_ERR_SIGNATURE_MISMATCH', body: { error: 'inputs differ' } },
      },
      'SLOGATE_ERR_SIGNATURE_MISMATCH',
      /runtime node remote-0 .*inputs differ/,
    ],
    [
      'the node refuses the token',
      { [`HEAD ${P}`]: { status: 403, code: 'SLOGATE_ERR_FORBIDDEN' } },
      'SLOGATE_ERR_NODE_REVISION',
      /runtime node remote-0 .*403 SLOGATE_ERR_FORBIDDEN/,
    ],
  ];
  for (const [what, table, code, message] of failures)
    test(`${what}: a failed result naming the node, never a throw`, async () => {
      const res = await node(table).rr.task(load);
      assert.equal(res.ok, false);
      if (res.ok) return;
      assert.equal(res.error.code, code);
      assert.match(res.error.message, message);
    });

  test('sync switches only the variants the node serves differently', async () => {
    const OTHER = `sha256:${'b'.repeat(64)}`;
    const { rr, calls } = node({ [`HEAD ${P}`]: { status: 200 }, [`POST ${P}/activate`]: { status: 200 } });
    const served = new Map([
      ['m\u0000v', OTHER],
      ['m\u0000w', REV],
    ]);
    const switched = await rr.sync(
      [
        { model: 'm', variant: 'v', revision: REV, path: FILE },
        { model: 'm', variant: 'w', revision: REV, path: FILE },
      ],
      served,
    );
    assert.deepEqual(switched, [`m/v@${REV}`]);
    assert.deepEqual(calls, [`HEAD ${P}`, `POST ${P}/activate`]);
  });
});
