// OpenTelemetry tracing: configured from the standard OTEL_* variables (read by the composition root and passed in),
// off unless an exporter or an OTLP endpoint is named. On, it starts the Node SDK, adds @fastify/otel's HTTP span to
// every inference request, and implements the runtime's tracing hooks: a wait span per queued request (a child of
// the HTTP span, linked to its batch) and a span per batch execution (linked to the requests it served).
import type { Context, Link, Span, TextMapPropagator } from '@opentelemetry/api';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { formatIssues } from '../core/config.js';
import { SlogateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { BatchInfo, BatchRan, QueuedInfo, TraceContext, TraceSpan, TracingHooks } from '../core/tracing.js';
import { ERROR_CODE_HEADER } from './errors.js';

const PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

/** The resolved tracing configuration (zod is its single source of truth). */
export const TracingConfigSchema = z.strictObject({
  enabled: z.boolean(),
  /** Span exporters: OTLP (to a collector) and/or the console (debugging). */
  exporters: z.array(z.enum(['otlp', 'console'])),
  protocol: z.enum(PROTOCOLS),
  /** Where OTLP spans go (the full traces URL for HTTP; host:port URL for gRPC). */
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string(), z.string()),
  timeoutMs: z.number().int().positive(),
  compression: z.enum(['gzip', 'none']),
  serviceName: z.string().min(1),
  resourceAttributes: z.record(z.string(), z.string()),
  sampler: z.enum(SAMPLERS),
  /** Sampling ratio for the *traceidratio samplers (0..1). */
  samplerRatio: z.number().min(0).max(1),
  propagators: z.array(z.enum(['tracecontext', 'baggage'])),
  /** The batch span processor's named limits (OTEL_BSP_*). */
  batch: z.strictObject({
    scheduledDelayMs: z.number().int().min(0),
    exportTimeoutMs: z.number().int().positive(),
    maxQueueSize: z.number().int().positive(),
    maxExportBatchSize: z.number().int().positive(),
  }),
});
export type TracingConfig = z.infer<typeof TracingConfigSchema>;

type Env = Readonly<Record<string, string | undefined>>;

function str(env: Env, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = env[n]?.trim();
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

function num(env: Env, fallback: number, ...names: string[]): number {
  const v = str(env, ...names);
  return v === undefined ? fallback : Number(v);
}

/** `k1=v1,k2=v2` (values percent-encoded), the form of OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES. */
export function parseKeyValues(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    try {
      out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
    }
  }
  return out;
}

/**
 * Reads the standard OTEL_* variables (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
 * Tracing is on when OTEL_TRACES_EXPORTER names an exporter other than `none`, or an OTLP endpoint is set, and
 * OTEL_SDK_DISABLED is not true. Throws SLOGATE_ERR_CONFIG listing every bad value.
 */
export function tracingConfigFromEnv(env: Env): Readonly<TracingConfig> {
  const exporterList = (str(env, 'OTEL_TRACES_EXPORTER') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const endpoint = str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const disabled = str(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true';
  const exporters =
    exporterList.length === 0 ? (endpoint !== undefined ? ['otlp'] : []) : exporterList.filter((e) => e !== 'none');
  const protocol = str(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  const raw = {
    enabled: !disabled && exporters.length > 0 && !exporterList.includes('none'),
    exporters,
    protocol,
    url: tracesUrl(env, protocol),
    headers: parseKeyValues(str(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS')),
    timeoutMs: num(env, 10_000, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'),
    compression: str(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION') ?? 'none',
    serviceName:
      str(env, 'OTEL_SERVICE_NAME') ??
      parseKeyValues(str(env, 'OTEL_RESOURCE_ATTRIBUTES'))['service.name'] ??
      'slogate',
    resourceAttributes: parseKeyValues(str(env, 'OTEL_RESOURCE_ATTRIBUTES')),
    sampler: str(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on',
    samplerRatio: num(env, 1, 'OTEL_TRACES_SAMPLER_ARG'),
    propagators: (str(env, 'OTEL_PROPAGATORS') ?? 'tracecontext,baggage')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '' && s !== 'none'),
    batch: {
      scheduledDelayMs: num(env, 5000, 'OTEL_BSP_SCHEDULE_DELAY'),
      exportTimeoutMs: num(env, 30_000, 'OTEL_BSP_EXPORT_TIMEOUT'),
      maxQueueSize: num(env, 2048, 'OTEL_BSP_MAX_QUEUE_SIZE'),
      maxExportBatchSize: num(env, 512, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    },
  };
  const parsed = TracingConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = formatIssues(parsed.error.issues);
    throw new SlogateError(
      'SLOGATE_ERR_CONFIG',
      `invalid OpenTelemetry environment:\n${lines.map((l) => `  ${l}`).join('\n')}`,
    );
  }
  return Object.freeze(parsed.data);
}

/** The signal-specific endpoint is used as is; the generic one gets /v1/traces appended (HTTP only), as the spec says. */
function tracesUrl(env: Env, protocol: string): string {
  const specific = str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (specific !== undefined) return specific;
  const base = str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (protocol === 'grpc') return base ?? 'http://localhost:4317';
  return base === undefined ? 'http://localhost:4318/v1/traces' : `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** What the composition root and the gateway hold: off, a shell that does nothing. */
export interface Tracing {
  readonly enabled: boolean;
  /** Hooks for the runtime (undefined when off, so the scheduler calls nothing). */
  readonly hooks: TracingHooks | undefined;
  /**
   * Adds the HTTP span to every route registered afterwards; call first in buildServer. No span while `skip()` is
   * true (the start-up warm-up).
   */
  install(app: FastifyInstance, skip?: () => boolean): Promise<void>;
  /** trace_id/span_id of a request for its log line (undefined when off or unsampled). */
  logFields(req: FastifyRequest): Record<string, string> | undefined;
  /** Exports what is buffered and waits for exports already in flight (tests). */
  flush(): Promise<void>;
  /** Flushes and stops; idempotent. */
  shutdown(): Promise<void>;
}

export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  hooks: undefined,
  install: async () => {},
  logFields: () => undefined,
  flush: async () => {},
  shutdown: async () => {},
});

/** Paths whose requests are not traced: scrapes, probes and the status page poll every second. */
const UNTRACED = new Set(['/', '/status', '/status/data', '/metrics', '/v2/health/live', '/v2/health/ready']);

/**
 * OpenTelemetry's API keeps its providers, context manager and propagator in process globals, so one process runs
 * at most one traced slogate at a time (tests run them one after another); shutdown() releases the globals.
 */
let active = false;

export async function startTracing(
  config: Readonly<TracingConfig>,
  options: { serviceVersion: string; logger: Logger },
): Promise<Tracing> {
  if (!config.enabled) return TRACING_OFF;
  if (active)
    throw new SlogateError(
      'SLOGATE_ERR_CONFIG',
      'OpenTelemetry tracing is already running in this process (one traced slogate per process)',
    );
  active = true;
  try {
    return await start(config, options);
  } catch (err) {
    active = false;
    throw err;
  }
}

async function start(
  config: Readonly<TracingConfig>,
  options: { serviceVersion: string; logger: Logger },
): Promise<Tracing> {
  // Loaded only when tracing is on: the default path neither loads nor pays for the SDK.
  const [{ NodeSDK, core, resources }, sdkTrace, { FastifyOtelInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/sdk-trace'),
    import('@fastify/otel'),
  ]);
  const processors: InstanceType<typeof sdkTrace.BatchSpanProcessor>[] = [];
  const exporters: { forceFlush?(): Promise<void> }[] = [];
  for (const name of config.exporters) {
    const exporter = name === 'console' ? new sdkTrace.ConsoleSpanExporter() : await otlpExporter(config);
    exporters.push(exporter);
    processors.push(
      new sdkTrace.BatchSpanProcessor({
        exporter,
        scheduledDelayMillis: config.batch.scheduledDelayMs,
        exportTimeoutMillis: config.batch.exportTimeoutMs,
        maxQueueSize: config.batch.maxQueueSize,
        maxExportBatchSize: Math.min(config.batch.maxExportBatchSize, config.batch.maxQueueSize),
      }),
    );
  }
  const ratio = new sdkTrace.TraceIdRatioBasedSampler(config.samplerRatio);
  const root = {
    always_on: new sdkTrace.AlwaysOnSampler(),
    always_off: new sdkTrace.AlwaysOffSampler(),
    traceidratio: ratio,
    parentbased_always_on: new sdkTrace.ParentBasedSampler({ root: new sdkTrace.AlwaysOnSampler() }),
    parentbased_always_off: new sdkTrace.ParentBasedSampler({ root: new sdkTrace.AlwaysOffSampler() }),
    parentbased_traceidratio: new sdkTrace.ParentBasedSampler({ root: ratio }),
  }[config.sampler];
  const propagators: TextMapPropagator[] = config.propagators.map((p) =>
    p === 'baggage' ? new core.W3CBaggagePropagator() : new core.W3CTraceContextPropagator(),
  );
  let skip: () => boolean = () => false;
  const fastifyOtel = new FastifyOtelInstrumentation({
    registerOnInitialization: false,
    // The request span is what matters; a span per hook and handler would cost more than it tells.
    instrumentHooks: false,
    instrumentHandler: false,
    // Asked per route at registration and per request (method and URL only).
    ignorePaths: (r: { url?: string }) => skip() || UNTRACED.has((r.url ?? '').split('?')[0] ?? ''),
    requestHook: (span: Span, req: FastifyRequest) => {
      const route = req.routeOptions.url;
      span.updateName(route === undefined ? req.method : `${req.method} ${route}`);
      span.setAttribute('url.scheme', 'http');
      span.setAttribute('client.address', req.ip);
      const ua = req.headers['user-agent'];
      if (ua !== undefined) span.setAttribute('user_agent.original', ua);
      const name = (req.params as { route?: unknown } | undefined)?.route;
      if (typeof name === 'string') span.setAttribute('slogate.route', name);
    },
  });
  const sdk = new NodeSDK({
    autoDetectResources: false,
    resource: resources.defaultResource().merge(
      resources.resourceFromAttributes({
        ...config.resourceAttributes,
        'service.name': config.serviceName,
        'service.version': options.serviceVersion,
      }),
    ),
    sampler: root,
    spanProcessors: processors,
    textMapPropagator: new core.CompositePropagator({ propagators }),
    instrumentations: [fastifyOtel],
    // Metrics are Prometheus (GET /metrics) and logs are pino: the SDK sets up neither.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  options.logger.info(
    { exporters: config.exporters, protocol: config.protocol, url: config.url, sampler: config.sampler },
    'OpenTelemetry tracing on',
  );
  const hooks = new OtelHooks(trace.getTracer('slogate', options.serviceVersion));
  let stopping: Promise<void> | undefined;
  return {
    enabled: true,
    hooks,
    async install(app, skipWhile) {
      if (skipWhile !== undefined) skip = skipWhile;
      await app.register(fastifyOtel.plugin());
      // Handlers run inside the request span's context, so the queue spans the runtime starts are its children.
      app.addHook('preHandler', (req, _reply, done) => {
        const ctx = req.opentelemetry().context;
        if (ctx == null) done();
        else context.with(ctx, done);
      });
      app.addHook('onSend', async (req, reply, payload) => {
        const span = req.opentelemetry().span;
        const code = reply.getHeader(ERROR_CODE_HEADER);
        if (span != null && typeof code === 'string') span.setAttribute('error.type', code);
        return payload;
      });
    },
    logFields(req) {
      // The request span is detached from the request once it ends (onSend); its context stays.
      const ctx = req.opentelemetry().context;
      const sc = ctx == null ? undefined : trace.getSpan(ctx)?.spanContext();
      return sc === undefined ? undefined : { trace_id: sc.traceId, span_id: sc.spanId };
    },
    // The processors export what they buffer, but not an export their schedule already started: the exporters wait for
    // their sends in flight (without it, a test read the receiver before a scheduled export arrived).
    flush: async () => {
      await Promise.all(processors.map((p) => p.forceFlush()));
      await Promise.all(exporters.map((e) => e.forceFlush?.()));
    },
    shutdown() {
      stopping ??= sdk.shutdown().finally(() => {
        fastifyOtel.disable();
        trace.disable();
        context.disable();
        propagation.disable();
        active = false;
      });
      return stopping;
    },
  };
}

async function otlpExporter(config: Readonly<TracingConfig>) {
  const common = { url: config.url, timeoutMillis: config.timeoutMs, compression: config.compression as never };
  if (config.protocol === 'grpc') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter(common);
  }
  if (config.protocol === 'http/json') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter({ ...common, headers: config.headers });
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter({ ...common, headers: config.headers });
}

interface Wait {
  readonly span: Span;
  /** The request's HTTP span: it learns the variant that served it. */
  readonly parent: Span;
}

/** The runtime's hooks over OpenTelemetry. Attribute names follow semantic conventions where one exists (error.type). */
class OtelHooks implements TracingHooks {
  readonly #tracer: ReturnType<typeof trace.getTracer>;

  constructor(tracer: ReturnType<typeof trace.getTracer>) {
    this.#tracer = tracer;
  }

  current(): TraceContext {
    return context.active();
  }

  queued(ctx: TraceContext | undefined, info: QueuedInfo): TraceSpan | undefined {
    if (ctx === undefined) return undefined;
    const parent = trace.getSpan(ctx as Context);
    // Only requests that arrived with a recording span (a sampled HTTP request) get wait spans.
    if (parent === undefined || !parent.isRecording()) return undefined;
    const attributes: Record<string, string | number> = {
      'slogate.model': info.model,
      'slogate.variant': info.variant,
      'slogate.rows': info.rows,
      'slogate.priority': info.priority,
    };
    if (info.tag !== undefined) attributes['slogate.route'] = info.tag;
    const span = this.#tracer.startSpan('slogate.queue', { kind: SpanKind.INTERNAL, attributes }, ctx as Context);
    return { span, parent } satisfies Wait;
  }

  dropped(wait: TraceSpan, code: string): void {
    const w = wait as Wait;
    w.span.setAttribute('error.type', code);
    w.span.setAttribute('slogate.outcome', 'dropped');
    w.span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    w.span.end();
  }

  dispatched(info: BatchInfo, waits: readonly (TraceSpan | undefined)[]): TraceSpan | undefined {
    const links: Link[] = [];
    for (const w of waits) if (w !== undefined) links.push({ context: (w as Wait).span.spanContext() });
    if (links.length === 0) return undefined;
    const batch = this.#tracer.startSpan('slogate.batch', {
      kind: SpanKind.INTERNAL,
      root: true,
      links,
      attributes: {
        'slogate.model': info.model,
        'slogate.variant': info.variant,
        'slogate.batch.size': info.rows,
        'slogate.batch.requests': info.requests,
      },
    });
    const link: Link = { context: batch.spanContext() };
    for (const x of waits) {
      if (x === undefined) continue;
      const w = x as Wait;
      w.span.setAttribute('slogate.variant', info.variant);
      w.span.setAttribute('slogate.batch.size', info.rows);
      w.span.addLink(link);
      w.span.end();
      w.parent.setAttribute('slogate.variant', info.variant);
    }
    return batch;
  }

  ran(batch: TraceSpan, outcome: BatchRan): void {
    const span = batch as Span;
    if (outcome.replicaId !== undefined) span.setAttribute('slogate.replica.id', outcome.replicaId);
    if (outcome.provider !== undefined) span.setAttribute('slogate.provider', outcome.provider);
    if (outcome.inferMs !== undefined) span.setAttribute('slogate.infer_ms', outcome.inferMs);
    if (outcome.computeMs !== undefined) span.setAttribute('slogate.compute_ms', outcome.computeMs);
    if (outcome.error !== undefined) {
      span.setAttribute('error.type', outcome.error.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message });
    }
    span.end();
  }
}
