// The naive peer: what a user writes by hand to serve an ONNX model over the V2 protocol. Fastify, one
// onnxruntime session per variant created with default options, and `session.run` per request on the main thread:
// no batching, no queue bound, no admission, no deadlines. A minimal V2 subset (health, metadata, infer in JSON and
// with the binary tensor extension for FP32 inputs) so the same bench schedule drives it.
// Bench peers are the one place outside runtime/worker that imports onnxruntime-node directly: they are the
// baselines slogate is measured against, not part of slogate.
// Usage: node naive.js --route R --variant NAME=PATH [--variant ...] [--default NAME]; prints `ready: URL`.
import { parseArgs } from 'node:util';
import Fastify, { type FastifyReply } from 'fastify';
import * as ort from 'onnxruntime-node';

const { values } = parseArgs({
  options: {
    route: { type: 'string', default: 'digits' },
    variant: { type: 'string', multiple: true, default: [] },
    default: { type: 'string' },
  },
});
const sessions = new Map<string, ort.InferenceSession>();
for (const spec of values.variant) {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`--variant NAME=PATH, got '${spec}'`);
  sessions.set(spec.slice(0, eq), await ort.InferenceSession.create(spec.slice(eq + 1)));
}
const defaultVariant = values.default ?? [...sessions.keys()][0];
const first = defaultVariant === undefined ? undefined : sessions.get(defaultVariant);
if (first === undefined) throw new Error('at least one --variant NAME=PATH is needed');

const V2_TYPES: Record<string, string> = {
  float32: 'FP32',
  int64: 'INT64',
  int32: 'INT32',
  float64: 'FP64',
  uint8: 'UINT8',
  int8: 'INT8',
  bool: 'BOOL',
};
const meta = (m: ort.InferenceSession.ValueMetadata) =>
  m.isTensor
    ? {
        name: m.name,
        datatype: V2_TYPES[m.type] ?? m.type,
        shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
      }
    : { name: m.name };

const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
app.get('/v2/health/ready', async () => ({ ready: true }));
app.get('/v2/health/live', async () => ({ live: true }));
app.get<{ Params: { route: string } }>('/v2/models/:route', async (req, reply) => {
  if (req.params.route !== values.route) return reply.code(404).send({ error: `unknown model '${req.params.route}'` });
  return {
    name: values.route,
    versions: [...sessions.keys()],
    platform: 'onnxruntime_onnx',
    inputs: first.inputMetadata.map(meta),
    outputs: first.outputMetadata.map(meta),
  };
});

interface InferDoc {
  inputs?: {
    name: string;
    shape: number[];
    datatype: string;
    data?: number[];
    parameters?: { binary_data_size?: number };
  }[];
  outputs?: { name: string; parameters?: { binary_data?: boolean } }[];
  parameters?: { binary_data_output?: boolean };
}

async function infer(
  route: string,
  variant: string,
  body: unknown,
  headerLength: string | undefined,
  reply: FastifyReply,
) {
  const session = sessions.get(variant);
  if (route !== values.route || session === undefined)
    return reply.code(404).send({ error: `unknown model '${route}' version '${variant}'` });
  let doc: InferDoc;
  let binary: Buffer | undefined;
  if (Buffer.isBuffer(body)) {
    const n = Number(headerLength);
    doc = JSON.parse(body.toString('utf8', 0, n)) as InferDoc;
    binary = body.subarray(n);
  } else {
    doc = body as InferDoc;
  }
  const feeds: Record<string, ort.Tensor> = {};
  let offset = 0;
  for (const inp of doc.inputs ?? []) {
    if (inp.datatype !== 'FP32') return reply.code(400).send({ error: `input '${inp.name}': only FP32 is supported` });
    let data: Float32Array;
    const size = inp.parameters?.binary_data_size;
    if (size !== undefined && binary !== undefined) {
      data = new Float32Array(binary.buffer.slice(binary.byteOffset + offset, binary.byteOffset + offset + size));
      offset += size;
    } else {
      data = Float32Array.from((inp.data ?? []).flat(Number.POSITIVE_INFINITY) as number[]);
    }
    feeds[inp.name] = new ort.Tensor('float32', data, inp.shape);
  }
  const results = await session.run(feeds);
  const wanted = doc.outputs?.map((o) => o.name) ?? session.outputNames;
  const binaryDefault = doc.parameters?.binary_data_output === true;
  const blobs: Buffer[] = [];
  const outputs = wanted.map((name) => {
    const t = results[name];
    if (t === undefined) return { name, datatype: 'FP32', shape: [0], data: [] };
    const datatype = V2_TYPES[t.type] ?? t.type;
    const asBinary = doc.outputs?.find((o) => o.name === name)?.parameters?.binary_data ?? binaryDefault;
    if (asBinary) {
      const d = t.data as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
      blobs.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
      return { name, datatype, shape: t.dims, parameters: { binary_data_size: d.byteLength } };
    }
    const data = Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
    return { name, datatype, shape: t.dims, data };
  });
  const json = JSON.stringify({ model_name: route, model_version: variant, outputs });
  if (blobs.length === 0) return reply.header('content-type', 'application/json').send(json);
  const head = Buffer.from(json);
  return reply
    .header('content-type', 'application/octet-stream')
    .header('inference-header-content-length', String(head.byteLength))
    .send(Buffer.concat([head, ...blobs]));
}

app.post<{ Params: { route: string } }>('/v2/models/:route/infer', (req, reply) =>
  infer(
    req.params.route,
    defaultVariant as string,
    req.body,
    req.headers['inference-header-content-length'] as string | undefined,
    reply,
  ),
);
app.post<{ Params: { route: string; version: string } }>('/v2/models/:route/versions/:version/infer', (req, reply) =>
  infer(
    req.params.route,
    req.params.version,
    req.body,
    req.headers['inference-header-content-length'] as string | undefined,
    reply,
  ),
);

const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`ready: ${address}\n`);
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
