// The HTTP floor: what serving the V2 binary protocol costs with no model, no batching and no bookkeeping. It reads
// each infer request's body (the binary tensor extension, its JSON header length checked) and answers one V2 binary
// response precomputed at start-up: the answer a 1-row request for the output the bench asks for (`label` when the
// model has one, else its first output) gets, so its size matches. onnxruntime runs once, at start-up, for that
// answer and the metadata the bench reads; never per request.
// --server fastify: Fastify with slogate's own construction options (the floor slogate's stack can reach);
// --server http: node:http alone (the floor of Node's HTTP);
// --server net: sockets alone, under Node's HTTP: requests split by their Content-Length, no parser, no streams, no
// header checks (a measure of what node:http itself costs, not a server to put on a network).
// Usage: node bare.js --route R --variant NAME=PATH [--server fastify|http|net]; prints `ready: URL`.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';
import { TIMEOUT_CHECK_INTERVAL_MS } from '../../gateway/connection-limits.js';
import { requestIdOptions } from '../../gateway/request-id.js';
import { scoringFor } from '../inputs.js';

const { values } = parseArgs({
  options: {
    route: { type: 'string', default: 'digits' },
    variant: { type: 'string', default: '' },
    server: { type: 'string', default: 'fastify' },
  },
});
const eq = values.variant.indexOf('=');
if (eq <= 0) throw new Error(`--variant NAME=PATH, got '${values.variant}'`);
const variant = values.variant.slice(0, eq);
const session = await ort.InferenceSession.create(values.variant.slice(eq + 1));

const V2_TYPES: Record<string, string> = { float32: 'FP32', int64: 'INT64', int32: 'INT32', float64: 'FP64' };
const meta = (m: ort.InferenceSession.ValueMetadata) =>
  m.isTensor
    ? {
        name: m.name,
        datatype: V2_TYPES[m.type] ?? m.type,
        shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
      }
    : { name: m.name, datatype: 'BYTES', shape: [] };
const metadata = {
  name: values.route,
  versions: [variant],
  platform: 'onnxruntime_onnx',
  inputs: session.inputMetadata.map(meta),
  outputs: session.outputMetadata.map(meta),
};
const metadataBody = Buffer.from(JSON.stringify(metadata));

/** The answer to a 1-row request of zeros for the bench's output, V2 binary. */
async function precomputedAnswer(): Promise<{ body: Buffer; headerLength: string }> {
  const input = metadata.inputs[0];
  if (input === undefined) throw new Error('the model has no input');
  const shape = [1, ...input.shape.slice(1).map((d) => (d < 0 ? 1 : d))];
  const rows = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const results = await session.run({ [input.name]: new ort.Tensor('float32', rows, shape) });
  const name = scoringFor(metadata)?.output ?? session.outputNames[0];
  const t = name === undefined ? undefined : results[name];
  if (name === undefined || t === undefined) throw new Error('the model has no output');
  const d = t.data as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
  const blob = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  const head = Buffer.from(
    JSON.stringify({
      model_name: values.route,
      model_version: variant,
      outputs: [
        { name, datatype: V2_TYPES[t.type] ?? t.type, shape: t.dims, parameters: { binary_data_size: blob.length } },
      ],
    }),
  );
  return { body: Buffer.concat([head, blob]), headerLength: String(head.byteLength) };
}
const answer = await precomputedAnswer();
const inferPath = new RegExp(`^/v2/models/${values.route}(/versions/${variant})?/infer$`);

/** A binary V2 request's body must hold at least its JSON header (what any V2 server checks before parsing). */
function plausible(headerLength: string | string[] | undefined, bodyBytes: number): boolean {
  const n = Number(headerLength);
  return Number.isInteger(n) && n > 0 && n <= bodyBytes;
}

async function fastifyServer(): Promise<string> {
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024 * 1024,
    ...requestIdOptions(),
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 72_000,
    ...({ http: { connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS } } as object),
    routerOptions: { maxParamLength: 200 },
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.get('/v2/models/:route', (_req, reply) => reply.header('content-type', 'application/json').send(metadataBody));
  const infer = (req: { body: unknown; headers: Record<string, unknown> }, reply: import('fastify').FastifyReply) => {
    const body = req.body as Buffer;
    const n = req.headers['inference-header-content-length'] as string | undefined;
    if (!plausible(n, body.byteLength)) return reply.code(400).send({ error: 'not a binary V2 request' });
    return reply
      .header('content-type', 'application/octet-stream')
      .header('inference-header-content-length', answer.headerLength)
      .send(answer.body);
  };
  app.post('/v2/models/:route/infer', infer);
  app.post('/v2/models/:route/versions/:version/infer', infer);
  process.once('SIGTERM', () => {
    void app.close().then(() => process.exit(0));
  });
  return app.listen({ host: '127.0.0.1', port: 0 });
}

function httpServer(): Promise<string> {
  const answerHeaders = {
    'content-type': 'application/octet-stream',
    'inference-header-content-length': answer.headerLength,
    'content-length': String(answer.body.byteLength),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (req.method === 'GET' && url.startsWith(`/v2/models/${values.route}`)) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': metadataBody.byteLength });
      res.end(metadataBody);
      return;
    }
    if (req.method !== 'POST' || !inferPath.test(url)) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const bytes = chunks.reduce((a, c) => a + c.byteLength, 0);
      if (!plausible(req.headers['inference-header-content-length'], bytes)) {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, answerHeaders);
      res.end(answer.body);
    });
  };
  const server = createServer({ connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS });
  server.keepAliveTimeout = 72_000;
  server.on('request', onRequest);
  process.once('SIGTERM', () => {
    server.closeIdleConnections();
    server.close(() => process.exit(0));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

/** One request's head: its method, URL and declared body length (-1 when it cannot be read). */
function requestHead(head: string): { method: string; url: string; bodyLength: number; headerLength: string } {
  const [method = '', url = ''] = head.slice(0, head.indexOf('\r\n')).split(' ');
  const field = (name: string) => new RegExp(`\r\n${name}: *([^\r]*)`, 'i').exec(head)?.[1];
  const length = Number(field('content-length') ?? 0);
  return { method, url, bodyLength: Number.isInteger(length) ? length : -1, headerLength: field(INFER_LENGTH) ?? '' };
}
const INFER_LENGTH = 'inference-header-content-length';

function netServer(): Promise<string> {
  const reply = (status: string, headers: string, body: Buffer) =>
    Buffer.concat([
      Buffer.from(
        `HTTP/1.1 ${status}\r\n${headers}content-length: ${body.byteLength}\r\nconnection: keep-alive\r\n\r\n`,
      ),
      body,
    ]);
  const inferAnswer = reply(
    '200 OK',
    `content-type: application/octet-stream\r\n${INFER_LENGTH}: ${answer.headerLength}\r\n`,
    answer.body,
  );
  const metadataAnswer = reply('200 OK', 'content-type: application/json\r\n', metadataBody);
  const answerFor = (head: ReturnType<typeof requestHead>, bodyBytes: number): Buffer => {
    if (head.method === 'GET' && head.url.startsWith(`/v2/models/${values.route}`)) return metadataAnswer;
    if (head.method !== 'POST' || !inferPath.test(head.url)) return reply('404 Not Found', '', Buffer.alloc(0));
    if (!plausible(head.headerLength, bodyBytes)) return reply('400 Bad Request', '', Buffer.alloc(0));
    return inferAnswer;
  };
  const onConnection = (socket: Socket) => {
    socket.setNoDelay(true);
    let pending: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = requestHead(buf.toString('latin1', 0, end));
        if (head.bodyLength < 0) return socket.destroy();
        const total = end + 4 + head.bodyLength;
        if (buf.byteLength < total) break;
        socket.write(answerFor(head, head.bodyLength));
        buf = buf.subarray(total);
      }
      pending = buf.byteLength > 0 ? buf : undefined;
    });
    socket.on('error', () => {});
  };
  const server = createNetServer(onConnection);
  process.once('SIGTERM', () => process.exit(0));
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

const servers: Record<string, () => Promise<string>> = { fastify: fastifyServer, http: httpServer, net: netServer };
const start = servers[values.server];
if (start === undefined) throw new Error('--server is fastify, http or net');
const address = await start();
process.stdout.write(`ready: ${address}\n`);
