// Traces end to end: slogate exports spans over real OTLP/HTTP (JSON) to a receiver in this test on 127.0.0.1.
// Pins the shape of one inference's trace (HTTP span -> queue span -> link to the batch span, and the batch span's
// links back), the attributes, the continuation of an incoming traceparent, drops, and the OTEL_* configuration.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { SlogateError } from '../../core/errors.js';
import { tracingConfigFromEnv } from '../../gateway/tracing.js';
import { createSlogate, type Slogate } from '../../main.js';
import { digitsConfig } from '../helpers.js';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: OtlpValue }[];
  links?: { traceId: string; spanId: string }[];
  status?: { code?: number; message?: string };
}
interface Received {
  span: OtlpSpan;
  resource: Record<string, unknown>;
  attrs: Record<string, unknown>;
}

const SPAN_KIND_INTERNAL = 1;
const SPAN_KIND_SERVER = 2;
const STATUS_ERROR = 2;

function value(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue;
}

function attributes(list: { key: string; value: OtlpValue }[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));
}

/** A minimal OTLP/HTTP receiver: POST /v1/traces with JSON ExportTraceServiceRequest bodies. */
class Receiver {
  readonly spans: Received[] = [];
  readonly contentTypes = new Set<string>();
  #server: Server | undefined;

  async start(): Promise<string> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        this.contentTypes.add(String(req.headers['content-type']));
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: {
            resource?: { attributes?: { key: string; value: OtlpValue }[] };
            scopeSpans: { spans: OtlpSpan[] }[];
          }[];
        };
        for (const rs of body.resourceSpans) {
          const resource = attributes(rs.resource?.attributes);
          for (const ss of rs.scopeSpans)
            for (const span of ss.spans) this.spans.push({ span, resource, attrs: attributes(span.attributes) });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  named(name: string): Received[] {
    return this.spans.filter((s) => s.span.name === name);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

const PIXELS = new Array(784).fill(0.25);
const body = (timeoutUs?: number) =>
  JSON.stringify({
    inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 784], data: PIXELS }],
    ...(timeoutUs === undefined ? {} : { parameters: { timeout: timeoutUs } }),
  });

describe('OpenTelemetry traces over OTLP/HTTP', () => {
  const receiver = new Receiver();
  let sg: Slogate;
  let url: string;
  const INCOMING_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const INCOMING_PARENT = '00f067aa0ba902b7';
  const CONCURRENT = 8;

  before(async () => {
    const endpoint = await receiver.start();
    sg = await createSlogate({
      config: digitsConfig(),
      logger: pino({ level: 'silent' }),
      defaultMetrics: false,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '50',
        OTEL_SERVICE_NAME: 'slogate-under-test',
      },
    });
    url = await sg.listen(0);
    // Concurrent requests share batches; one continues a caller's trace; scrapes and probes are not traced.
    const headers = { 'content-type': 'application/json' };
    const plain = Array.from({ length: CONCURRENT - 1 }, () =>
      fetch(`${url}/v2/models/digits/infer`, { method: 'POST', headers, body: body() }),
    );
    const continued = fetch(`${url}/v2/models/digits/infer`, {
      method: 'POST',
      headers: { ...headers, traceparent: `00-${INCOMING_TRACE}-${INCOMING_PARENT}-01`, 'x-request-id': 'trace-me' },
      body: body(),
    });
    for (const r of await Promise.all([...plain, continued])) {
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    // Pinned (no admission) with a 1 us timeout: queued, then dropped before it can run.
    const dropped = await fetch(`${url}/v2/models/digits/versions/large/infer`, {
      method: 'POST',
      headers,
      body: body(1),
    });
    assert.equal(dropped.status, 503);
    assert.equal(dropped.headers.get('x-slogate-error-code'), 'SLOGATE_ERR_DEADLINE_UNREACHABLE');
    await (await fetch(`${url}/metrics`)).text();
    await (await fetch(`${url}/status/data`)).text();
    await (await fetch(`${url}/v2/health/ready`)).text();
    await sg.tracing.flush();
  });

  after(async () => {
    await sg?.close();
    await receiver.close();
  });

  test('spans arrive as OTLP JSON with the service resource', () => {
    assert.ok(receiver.spans.length > 0, 'no spans received');
    assert.deepEqual([...receiver.contentTypes], ['application/json']);
    for (const s of receiver.spans) {
      assert.equal(s.resource['service.name'], 'slogate-under-test');
      assert.equal(typeof s.resource['service.version'], 'string');
    }
  });

  test('every inference is one trace: a SERVER span with HTTP attributes and one queue span as its child', () => {
    const http = receiver.spans.filter((s) => s.span.kind === SPAN_KIND_SERVER);
    assert.equal(http.length, CONCURRENT + 1, `HTTP spans: ${http.map((s) => s.span.name).join(', ')}`);
    const queues = receiver.named('slogate.queue');
    assert.equal(queues.length, CONCURRENT + 1);
    for (const h of http) {
      assert.equal(h.attrs['http.request.method'], 'POST');
      assert.match(String(h.attrs['http.route']), /^\/v2\/models\/:route(\/versions\/:version)?\/infer$/);
      assert.equal(h.span.name, `POST ${h.attrs['http.route']}`);
      assert.equal(h.attrs['slogate.route'], 'digits');
      const mine = queues.filter((q) => q.span.parentSpanId === h.span.spanId);
      assert.equal(mine.length, 1, 'one queue span under each HTTP span');
      const q = mine[0] as Received;
      assert.equal(q.span.traceId, h.span.traceId);
      assert.equal(q.span.kind, SPAN_KIND_INTERNAL);
      assert.equal(q.attrs['slogate.route'], 'digits');
      assert.equal(q.attrs['slogate.model'], 'digits');
      assert.equal(q.attrs['slogate.rows'], 1);
    }
    const ok = http.filter((h) => h.attrs['http.response.status_code'] === 200);
    assert.equal(ok.length, CONCURRENT);
    for (const h of ok)
      assert.equal(typeof h.attrs['slogate.variant'], 'string', 'the HTTP span names the variant that served it');
  });

  test('queue spans link to their batch span, and each batch span links back to the requests it ran', () => {
    const batches = receiver.named('slogate.batch');
    assert.ok(batches.length >= 1 && batches.length <= CONCURRENT, `${batches.length} batches`);
    const byId = new Map(batches.map((b) => [b.span.spanId, b]));
    const served = receiver.named('slogate.queue').filter((q) => q.span.status?.code !== STATUS_ERROR);
    assert.equal(served.length, CONCURRENT);
    for (const q of served) {
      assert.equal(q.span.links?.length, 1, 'one link, to the batch');
      const link = q.span.links?.[0] as { traceId: string; spanId: string };
      const b = byId.get(link.spanId);
      assert.ok(b !== undefined, 'the link points at an exported batch span');
      assert.equal(link.traceId, b.span.traceId);
      assert.notEqual(b.span.traceId, q.span.traceId, 'a batch is its own trace');
      assert.ok(
        b.span.links?.some((l) => l.spanId === q.span.spanId && l.traceId === q.span.traceId),
        'the batch links back to the queue span',
      );
      assert.equal(q.attrs['slogate.variant'], b.attrs['slogate.variant']);
    }
    let rows = 0;
    for (const b of batches) {
      assert.equal(b.span.parentSpanId ?? '', '', 'batch spans are roots');
      assert.equal(b.attrs['slogate.model'], 'digits');
      assert.equal(typeof b.attrs['slogate.variant'], 'string');
      assert.equal(b.attrs['slogate.replica.id'], 'local-0');
      assert.equal(b.attrs['slogate.provider'], 'cpu');
      assert.equal(b.attrs['slogate.batch.requests'], b.span.links?.length);
      assert.ok(Number(b.attrs['slogate.batch.size']) >= 1);
      assert.ok(Number(b.attrs['slogate.infer_ms']) > 0);
      rows += Number(b.attrs['slogate.batch.size']);
    }
    assert.equal(rows, CONCURRENT, 'every served row ran in exactly one batch');
  });

  test("an incoming traceparent is continued: the HTTP span joins the caller's trace as its child", () => {
    const joined = receiver.spans.filter((s) => s.span.traceId === INCOMING_TRACE);
    const http = joined.find((s) => s.span.kind === SPAN_KIND_SERVER);
    assert.ok(http !== undefined, 'an HTTP span in the incoming trace');
    assert.equal(http.span.parentSpanId, INCOMING_PARENT);
    assert.ok(joined.some((s) => s.span.name === 'slogate.queue' && s.span.parentSpanId === http.span.spanId));
    const others = receiver.spans.filter((s) => s.span.kind === SPAN_KIND_SERVER && s.span.traceId !== INCOMING_TRACE);
    assert.ok(
      others.every((s) => s.span.parentSpanId === undefined || s.span.parentSpanId === ''),
      'requests without traceparent start new traces',
    );
  });

  test('a dropped request ends its queue span with the error code, and its HTTP span says why', () => {
    const http = receiver.spans.find(
      (s) => s.span.kind === SPAN_KIND_SERVER && s.attrs['http.response.status_code'] === 503,
    );
    assert.ok(http !== undefined);
    assert.equal(http.attrs['error.type'], 'SLOGATE_ERR_DEADLINE_UNREACHABLE');
    assert.equal(http.span.status?.code, STATUS_ERROR);
    const q = receiver.named('slogate.queue').find((s) => s.span.parentSpanId === http.span.spanId);
    assert.ok(q !== undefined);
    assert.equal(q.attrs['error.type'], 'SLOGATE_ERR_DEADLINE_UNREACHABLE');
    assert.equal(q.attrs['slogate.outcome'], 'dropped');
    assert.equal(q.span.status?.code, STATUS_ERROR);
    assert.equal(q.span.links?.length ?? 0, 0, 'it never ran in a batch');
  });

  test('scrapes, probes and the status page are not traced', () => {
    const paths = receiver.spans.map((s) => s.attrs['url.path']).filter((p) => p !== undefined);
    for (const p of ['/metrics', '/status/data', '/v2/health/ready']) assert.ok(!paths.includes(p), `${p} was traced`);
  });
});

describe('tracing configuration from OTEL_* variables', () => {
  test('off by default, and with OTEL_SDK_DISABLED or exporter none', () => {
    assert.equal(tracingConfigFromEnv({}).enabled, false);
    assert.equal(
      tracingConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' }).enabled,
      false,
    );
    assert.equal(
      tracingConfigFromEnv({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })
        .enabled,
      false,
    );
  });

  test('an endpoint or an exporter turns it on; endpoints and headers resolve as the spec says', () => {
    const c = tracingConfigFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=a%20b,x=1',
    });
    assert.equal(c.enabled, true);
    assert.deepEqual(c.exporters, ['otlp']);
    assert.equal(c.protocol, 'http/protobuf');
    assert.equal(c.url, 'http://collector:4318/v1/traces');
    assert.deepEqual(c.headers, { 'api-key': 'a b', x: '1' });
    assert.equal(c.serviceName, 'slogate');
    assert.equal(c.sampler, 'parentbased_always_on');
    const t = tracingConfigFromEnv({
      OTEL_TRACES_EXPORTER: 'otlp,console',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    assert.deepEqual(t.exporters, ['otlp', 'console']);
    assert.equal(t.url, 'http://c:4318/custom', 'the signal-specific endpoint is used as is');
    assert.equal(tracingConfigFromEnv({ OTEL_TRACES_EXPORTER: 'otlp' }).url, 'http://localhost:4318/v1/traces');
    assert.equal(
      tracingConfigFromEnv({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).url,
      'http://localhost:4317',
    );
    const s = tracingConfigFromEnv({
      OTEL_TRACES_EXPORTER: 'console',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    });
    assert.equal(s.samplerRatio, 0.25);
  });

  test('bad values fail start-up with SLOGATE_ERR_CONFIG naming each one', () => {
    assert.throws(
      () =>
        tracingConfigFromEnv({
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon',
          OTEL_TRACES_SAMPLER_ARG: '2',
        }),
      (err: unknown) =>
        err instanceof SlogateError &&
        err.code === 'SLOGATE_ERR_CONFIG' &&
        /protocol/.test(err.message) &&
        /samplerRatio/.test(err.message),
    );
  });

  test('untraced slogate installs no tracing hooks', async () => {
    const sg = await createSlogate({
      config: digitsConfig(),
      logger: pino({ level: 'silent' }),
      defaultMetrics: false,
      env: {},
    });
    try {
      assert.equal(sg.tracing.enabled, false);
      assert.equal(sg.tracing.hooks, undefined);
    } finally {
      await sg.close();
    }
  });
});
