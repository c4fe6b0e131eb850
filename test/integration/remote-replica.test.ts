// A remote replica against a fake runtime node on loopback that answers what each test tells it: a right answer is
// decoded; an answer with the wrong rows, outputs, datatypes or sizes, or one larger than a right answer can be, is
// a replica fault (retried elsewhere by the pool), never a wrong result handed to clients nor an unbounded read.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SystemClock } from '../../core/clock.js';
import type { Tensor, TensorSpec } from '../../core/types.js';
import { encodeInferResponse } from '../../gateway/v2/codec.js';
import { ANSWER_HEADER_BYTES, answerLimitBytes, RemoteReplica } from '../../runtime/remote-replica.js';
import { type BatchTask, ReplicaFault } from '../../runtime/replica.js';

const OUTPUTS: TensorSpec[] = [
  { name: 'logits', datatype: 'FP32', shape: [-1, 2] },
  { name: 'label', datatype: 'INT64', shape: [-1, 1] },
];
const META = {
  name: 'm',
  versions: ['v'],
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
  outputs: OUTPUTS,
};

interface Answer {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body: string | Buffer;
}

/** A right answer for `rows` rows, with patches applied to the JSON header's outputs. */
function answer(rows: number, patch: (outputs: Tensor[]) => Tensor[] = (o) => o, flags = [true, true]): Answer {
  const logits: Tensor = {
    name: 'logits',
    datatype: 'FP32',
    shape: [rows, 2],
    data: new Float32Array(rows * 2).fill(0.5),
  };
  const label: Tensor = { name: 'label', datatype: 'INT64', shape: [rows, 1], data: new BigInt64Array(rows).fill(3n) };
  const outputs = patch([logits, label]);
  const enc = encodeInferResponse('m', 'v', undefined, outputs, flags.slice(0, outputs.length));
  return {
    headers:
      enc.jsonLength === undefined
        ? { 'content-type': 'application/json' }
        : { 'inference-header-content-length': String(enc.jsonLength), 'content-type': 'application/octet-stream' },
    body: enc.body,
  };
}

type Answering = (rows: number, outputs: string[] | undefined) => Answer;
let next: Answering = (rows) => answer(rows);
let server: Server;
let replica: RemoteReplica;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/v2/health/ready') return void res.end('{"ready":true}');
    if (req.url === '/v2/models/m') return void res.end(JSON.stringify(META));
    const body = Buffer.concat(chunks);
    const head = JSON.parse(body.subarray(0, Number(req.headers['inference-header-content-length'])).toString()) as {
      inputs: { shape: number[] }[];
      outputs?: { name: string }[];
    };
    const a = next(
      head.inputs[0]?.shape[0] as number,
      head.outputs?.map((o) => o.name),
    );
    res.writeHead(a.status ?? 200, a.headers ?? {});
    res.end(a.body);
  });
}

const task = (rows: number, outputs?: string[]): BatchTask => ({
  model: 'm',
  variant: 'v',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: new Float32Array(rows * 4) }],
  outputs,
  rows,
  transfer: false,
});

async function fault(a: Answering, t = task(2)): Promise<ReplicaFault> {
  next = a;
  try {
    await replica.run(t);
  } catch (err) {
    assert.ok(err instanceof ReplicaFault, `expected a ReplicaFault, got ${String(err)}`);
    return err;
  } finally {
    next = (rows) => answer(rows);
  }
  assert.fail('the malformed answer was accepted');
}

before(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  replica = new RemoteReplica({
    id: 'remote-0',
    url: `http://127.0.0.1:${port}`,
    slots: 1,
    models: new Map([['m', ['v']]]),
    clock: new SystemClock(),
    healthCheckIntervalMs: 60_000,
    startTimeoutMs: 5000,
    requestTimeoutMs: 5000,
  });
  await replica.start();
});

after(async () => {
  await replica?.close();
  await new Promise((r) => server?.close(r));
});

describe('RemoteReplica: answers are checked against the batch asked for', () => {
  test('a right answer, binary or JSON, is decoded with the batch rows', async () => {
    const out = await replica.run(task(3));
    assert.deepEqual(
      out.outputs.map((o) => [o.name, o.shape]),
      [
        ['logits', [3, 2]],
        ['label', [3, 1]],
      ],
    );
    next = (rows) => answer(rows, (o) => o, [false, false]);
    const json = await replica.run(task(2));
    assert.deepEqual(Array.from(json.outputs[1]?.data as BigInt64Array), [3n, 3n]);
    next = (rows, names) => answer(rows, (o) => o.filter((t) => names === undefined || names.includes(t.name)));
    const one = await replica.run(task(2, ['label']));
    assert.deepEqual(
      one.outputs.map((o) => o.name),
      ['label'],
    );
  });

  test('the wrong number of rows is a replica fault, not a short or long answer to split', async () => {
    for (const rows of [1, 3, 64]) await fault(() => answer(rows));
  });

  test('a missing, extra, repeated or unknown output is a replica fault', async () => {
    await fault((rows) => answer(rows, (o) => o.slice(0, 1)));
    await fault((rows) => answer(rows, (o) => [...o, { ...(o[0] as Tensor), name: 'extra' }]));
    await fault((rows) => answer(rows, (o) => [o[0] as Tensor, o[0] as Tensor]));
    await fault((rows) => answer(rows), task(2, ['label']));
  });

  test('a wrong datatype, shape or binary size, or unclaimed bytes, is a replica fault', async () => {
    await fault((rows) => answer(rows, (o) => [{ ...(o[0] as Tensor), datatype: 'FP64' }, o[1] as Tensor]));
    await fault((rows) => answer(rows, (o) => [{ ...(o[0] as Tensor), shape: [rows, 3] }, o[1] as Tensor]));
    await fault((rows) => answer(rows, (o) => [{ ...(o[0] as Tensor), shape: [rows, 2, 1] }, o[1] as Tensor]));
    await fault((rows) => {
      const a = answer(rows);
      return { ...a, body: Buffer.concat([a.body as Buffer, Buffer.alloc(4)]) };
    });
    await fault((rows) => {
      const a = answer(rows);
      return { ...a, body: (a.body as Buffer).subarray(0, (a.body as Buffer).byteLength - 4) };
    });
    await fault(() => ({ body: 'not json' }));
    await fault(() => ({ body: '{"outputs":[{"name":"logits","datatype":"FP32","shape":[2,2],"data":["a",1,2,3]}]}' }));
  });

  test('an answer larger than a right one can be is cut off at the bound and is a replica fault', async () => {
    const limit = answerLimitBytes({ rows: 2, outputs: OUTPUTS }, 1 << 30);
    assert.equal(limit, ANSWER_HEADER_BYTES + 2 * 2 * 4 + 2 * 8);
    const e = await fault(() => ({ body: Buffer.alloc(8 * 1024 * 1024, 0x20) }));
    assert.match(e.message, /more than \d+ bytes/);
  });

  test("a node's error text is cut short in the fault", async () => {
    const e = await fault(() => ({ status: 500, body: JSON.stringify({ error: 'x'.repeat(10_000) }) }));
    assert.ok(e.message.length < 400, `${e.message.length} chars`);
  });
});
