// The configuration schema (zod is the single source of truth for its types), YAML loading with ${ENV}
// interpolation, path resolution and freezing. Parsed once in the composition root, then passed down.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isPair, type Pair, parseDocument, parse as parseYaml, type Scalar, visit } from 'yaml';
import { z } from 'zod';
import { SlogateError } from './errors.js';
import { RolloutSchema } from './rollout-config.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const nameSchema = z
  .string()
  .regex(NAME, 'must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit');

export const SloSchema = z.strictObject({
  /** End-to-end p99 latency target in milliseconds (gateway in to gateway out). */
  p99Ms: z.number().positive().max(600_000),
  /** Lowest accuracy (0..1, on the model's eval set) a variant may have to serve this route. */
  minAccuracy: z.number().min(0).max(1).optional(),
  /** Highest cost per million inferences, in the units of `pricing`. */
  maxCostPerMillion: z.number().positive().optional(),
});

const staticFields = {
  variant: nameSchema,
  maxBatch: z.number().int().min(1).max(4096).default(1),
  maxQueueDelayMs: z.number().min(0).max(60_000).default(0),
};
const aimdFields = { variant: nameSchema, maxBatch: z.number().int().min(1).max(4096).default(64) };

export const StaticPolicySchema = z.strictObject(staticFields);

/**
 * A route's policy, written `adaptive`, `{static: {...}}` or `{aimd: {...}}` (or already normalised) and always read
 * normalised: one object with a `kind`, so code switches on `kind` instead of probing for keys.
 */
export const PolicySchema = z.union([
  z.literal('adaptive').transform(() => ({ kind: 'adaptive' as const })),
  z.strictObject({ static: StaticPolicySchema }).transform((p) => ({ kind: 'static' as const, ...p.static })),
  z.strictObject({ aimd: z.strictObject(aimdFields) }).transform((p) => ({ kind: 'aimd' as const, ...p.aimd })),
  z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('adaptive') }),
    z.strictObject({ kind: z.literal('static'), ...staticFields }),
    z.strictObject({ kind: z.literal('aimd'), ...aimdFields }),
  ]),
]);

export const CacheSchema = z.strictObject({
  maxEntries: z.number().int().min(1).max(10_000_000),
  /** Estimated heap bytes of the stored answers; bounds memory whatever maxEntries says (docs/operations.md). */
  maxBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(1024 * 1024 * 1024)
    .default(64 * 1024 * 1024),
  ttlMs: z.number().positive().max(86_400_000).default(60_000),
});

export const RouteSchema = z.strictObject({
  model: nameSchema,
  slo: SloSchema,
  /** Higher is more important; negative is sheddable (shed before anything else). */
  priority: z.number().int().min(-1000).max(1000).default(0),
  objective: z.enum(['max-accuracy', 'min-cost', 'utility']).default('max-accuracy'),
  /** Weight of cost against accuracy for objective `utility`: maximise accuracy - utilityCostWeight * costPerMillion. */
  utilityCostWeight: z.number().min(0).default(0.001),
  policy: PolicySchema.prefault('adaptive'),
  /** Restrict the variants this route may use (default: all of the model's variants). */
  variants: z.array(nameSchema).min(1).optional(),
  cache: CacheSchema.optional(),
  /** Requests pinned to a version (/versions/{v}) pass the route's admission (`route`, default) or skip it (`exempt`). */
  pinnedAdmission: z.enum(['route', 'exempt']).optional(),
  /** The band a client's `priority` parameter is clamped to; default: from -1000 up to the route's own priority. */
  priorityBand: z
    .strictObject({ min: z.number().int().min(-1000).max(1000), max: z.number().int().min(-1000).max(1000) })
    .refine((b) => b.min <= b.max, 'priorityBand.min must not exceed priorityBand.max')
    .optional(),
});

const SHA256_PIN = /^sha256:[0-9a-f]{64}$/;

export const VariantSchema = z.strictObject({
  path: z.string().min(1),
  description: z.string().optional(),
  /** The expected revision (`sha256:<64 hex>`): a file or deployed revision with other bytes is refused. */
  sha256: z.string().regex(SHA256_PIN, 'must be sha256: followed by 64 lowercase hex digits').optional(),
});

export const ModelSchema = z.strictObject({
  variants: z
    .record(nameSchema, VariantSchema)
    .refine((v) => Object.keys(v).length > 0, 'a model needs at least one variant'),
  /** The model's eval set (see models/digits/README.md for the format); `slogate eval` scores variants on it. */
  eval: z.string().optional(),
  /** Where `slogate eval` records measured accuracy; default: model.yaml beside the first variant. */
  metadata: z.string().optional(),
  /** Largest batch (rows) the runtime forms for this model. */
  maxBatch: z.number().int().min(1).max(4096).default(64),
  /** Accept NaN and infinities in float inputs (refused with 400 by default). */
  allowNonFinite: z.boolean().default(false),
  /** Inputs and the outputs every acceptable revision must reproduce (docs/lifecycle.md); checked before a deploy. */
  golden: z.string().optional(),
  /** Without a route's minAccuracy, a new revision may be at most this much (0..1) less accurate than the active one. */
  maxAccuracyDrop: z.number().min(0).max(1).default(0.005),
  /** A new revision whose p50 service time at the largest batch size is over this many times the active one's is refused. */
  maxSlowdown: z.number().min(1).max(1000).default(3),
  /** How a revision that passed its gates meets live traffic: `immediate` or a shadow and canary policy. */
  rollout: RolloutSchema,
});

export const StoreSchema = z.strictObject({
  /** The model store (revisions and their state); default `.slogate` beside the config file, created on first use. */
  dir: z.string().min(1).default('.slogate'),
  /** Revisions kept per variant besides the active one; older ones are deleted. */
  keepRevisions: z.number().int().min(0).max(1000).default(5),
  /** Largest model file accepted as a revision (checked before the upload is buffered). */
  maxFileBytes: z
    .number()
    .int()
    .min(1024)
    .max(4 * 1024 * 1024 * 1024)
    .default(512 * 1024 * 1024),
});

export const ServerSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8000),
  bodyLimitBytes: z
    .number()
    .int()
    .min(1024)
    .max(1 << 30)
    .default(8 * 1024 * 1024),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One log line per request (off by default: it costs on the hot path). */
  requestLog: z.boolean().default(false),
  /**
   * Ordinary inference requests are served straight from node:http, past Fastify's routing and hooks (the same
   * answers, less event-loop time); false sends every one through the Fastify route. Off while tracing or the
   * request log is on, which hook into Fastify.
   */
  directPath: z.boolean().default(true),
  /**
   * The direct path reads its requests off the connections itself, before node:http parses them (the same answers,
   * less CPU per request); a connection goes to node:http at its first other request. Plain HTTP only.
   */
  directSockets: z.boolean().default(true),
  /** Most open client connections; further ones are closed as they arrive (each holds a socket and a parser). */
  maxConnections: z.number().int().min(1).max(1_000_000).default(1024),
  /**
   * Most inference body bytes read or held at once (declared Content-Length, or the route's limit when chunked);
   * a request over it is refused with 503 before its body is read.
   */
  maxBodyBytesInFlight: z
    .number()
    .int()
    .min(1024)
    .max(2 ** 34)
    .default(64 * 1024 * 1024),
  /** How long SIGTERM waits for queued and running work before forcing exit. */
  drainTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
  /**
   * After the drain the listener closes, but requests still arriving on open keep-alive connections are answered
   * (503 with Connection: close) for this long before idle sockets are closed: closing them at once resets requests
   * a client is already sending on them.
   */
  shutdownGraceMs: z.number().int().min(0).max(60_000).default(500),
  /**
   * Watch the config file (and its directory, where a Kubernetes ConfigMap swaps a symlink) and apply a change as
   * `slogate apply` would; an invalid file is logged and counted, never applied.
   */
  watchConfig: z.boolean().default(false),
  /**
   * The share of the event loop the status page, /metrics and unknown paths may take over the last second; beyond it
   * they get 429 at once, so a flood of them cannot starve inference. Health probes and admin are never refused.
   */
  otherWorkShare: z.number().gt(0).max(1).default(0.1),
  /** Bearer token for /admin; without one, admin answers loopback callers only (gateway/admin/admin-token.ts). */
  adminToken: z.string().min(8).optional(),
  /**
   * Synthetic requests through the real request path before the server listens, so that the first clients do not
   * pay for compiling it (and the engine does not read that as load). requests: 0 turns it off.
   */
  warmup: z
    .strictObject({
      requests: z.number().int().min(0).max(100_000).default(1000),
      maxMs: z.number().int().min(0).max(120_000).default(5000),
      concurrency: z.number().int().min(1).max(256).default(16),
    })
    .prefault({}),
});

export const UrlReplicaSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** Parallel batches sent to this node at once. */
  concurrency: z.number().int().min(1).max(256).default(2),
});

/** Runtime nodes found by DNS: every address of the name is a node, re-resolved while serving. */
export const DnsReplicaSchema = z
  .strictObject({
    dns: z
      .string()
      .min(1)
      .max(253)
      .regex(
        /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/,
        'must be a DNS name',
      ),
    /** The port every address serves on (A/AAAA records). */
    port: z.number().int().min(1).max(65_535).optional(),
    /** A named port: SRV records of _<portName>._tcp.<dns> give hosts and ports. */
    portName: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/, 'must be a port name (1-15 lowercase letters, digits, -)')
      .optional(),
    /** host:port of a DNS server to ask instead of the system's. */
    resolver: z
      .string()
      .regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\])(:\d{1,5})?$/, 'must be an IP address with an optional :port')
      .optional(),
    /** Parallel batches sent to each node at once. */
    concurrency: z.number().int().min(1).max(256).default(2),
    /** Time between resolutions (a failing node also triggers one). */
    resolveIntervalMs: z.number().int().min(100).max(600_000).default(5000),
  })
  .refine((r) => (r.port === undefined) !== (r.portName === undefined), {
    path: ['port'],
    message: 'give exactly one of port (A/AAAA records) or portName (SRV records)',
  });

export const RemoteReplicaSchema = z.union([UrlReplicaSchema, DnsReplicaSchema]);

export const ProfileSchema = z.strictObject({
  /** Measure service time per variant and batch size at start-up (cached on disk by file hash + host). */
  enabled: z.boolean().default(true),
  cacheDir: z.string().default('.slogate-cache'),
  /** Timed runs per (variant, batch size) after warm-up, as far as the time budget allows (at least 5). */
  samples: z.number().int().min(5).max(10_000).default(200),
  /** Time budget of the whole start-up sweep, spread over its points (approximate: each point runs 3 warm-ups and 5 samples at least). */
  budgetMs: z.number().int().min(100).max(600_000).default(20_000),
  /** A cached profile older than this is measured again (0: cached profiles never expire). */
  maxAgeHours: z.number().min(0).max(87_600).default(168),
});

export const HealthSchema = z
  .strictObject({
    /** Ready slots every served model needs for /v2/health/ready to answer 200. */
    minReadySlots: z.number().int().min(1).max(4096).default(1),
    /** /v2/health/live fails once the server has had no ready slot for this long (0: never), so the pod is restarted. */
    livenessTimeoutMs: z.number().int().min(0).max(3_600_000).default(60_000),
    /** Wait before the second attempt to replace a worker that exited; doubled per failed attempt. */
    respawnInitialMs: z.number().int().min(10).max(600_000).default(500),
    /** Longest wait between two replacement attempts (they go on for ever). */
    respawnMaxMs: z.number().int().min(10).max(600_000).default(30_000),
  })
  .refine((h) => h.respawnMaxMs >= h.respawnInitialMs, {
    path: ['respawnMaxMs'],
    message: 'must be at least respawnInitialMs',
  });

export const BatchTimeoutSchema = z.strictObject({
  /** A batch may run this many times its variant's p99 service time (for its rows) before it counts as hung. */
  p99Factor: z.number().min(1).max(1000).default(4),
  /** Added to the longer of that and the batch's latest deadline: room for timer and event-loop delay. */
  marginMs: z.number().int().min(0).max(600_000).default(100),
  /** Shortest timeout, whatever the deadline and the profile say (a variant without a profile gets this). */
  floorMs: z.number().int().min(1).max(600_000).default(250),
});

export const RuntimeSchema = z.strictObject({
  /** Local worker replicas; auto = max(1, cores - 1). */
  workers: z.union([z.literal('auto'), z.number().int().min(0).max(256)]).default('auto'),
  /** onnxruntime intra-op threads per worker session; auto = 1. */
  intraOpThreads: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default('auto'),
  /**
   * Batches of a variant's active revision predicted to take at most this long run on the main thread, not a worker:
   * the hand-off's two cross-thread wake-ups cost more than they do. 0 turns it off; CPU only. auto = 0.2 ms, or 2 ms
   * on one core (where a worker thread adds no parallelism, only the hand-off).
   */
  inlineMaxMs: z.union([z.literal('auto'), z.number().min(0).max(10)]).default('auto'),
  device: z
    .string()
    .regex(/^(cpu|cuda(:\d+)?)$/, 'must be cpu, cuda or cuda:N')
    .default('cpu'),
  /** Bound of each variant's queue, in rows; a full queue rejects at once with 503. */
  maxQueueRows: z.number().int().min(1).max(1_000_000).default(4096),
  /** Remote slogate runtime nodes serving the same models. */
  replicas: z.array(RemoteReplicaSchema).default([]),
  healthCheckIntervalMs: z.number().int().min(50).max(60_000).default(1000),
  /** Refuse at once a request whose deadline the queue ahead rules out (`slogate runtime` turns it on). */
  refuseUnreachable: z.boolean().default(false),
  /**
   * Plan with the slots remote nodes' load reports leave this gateway (true), or ignore the reports and plan with each
   * node's configured concurrency as if its slots were this gateway's alone (false: a comparison knob).
   */
  loadReports: z.boolean().default(true),
  profile: ProfileSchema.prefault({}),
  health: HealthSchema.prefault({}),
  /** When a running batch counts as hung: its replica is taken out of service and its requests answered. */
  batchTimeout: BatchTimeoutSchema.prefault({}),
});

export const PricingSchema = z.strictObject({
  cpuCoreHour: z.number().min(0).default(0.04),
  gpuHour: z.number().min(0).default(3),
});

export const EngineSchema = z.strictObject({
  tickMs: z.number().int().min(10).max(10_000).default(250),
  /** Fraction of the p99 budget kept in reserve when planning. */
  margin: z.number().min(0).max(0.9).default(0.1),
  /** Highest utilisation planned for. */
  maxUtilisation: z.number().min(0.1).max(0.99).default(0.8),
  /** Consecutive ticks of headroom before one step up. */
  upgradeTicks: z.number().int().min(1).max(1000).default(3),
  /** Minimum time after a switch before an upgrade. */
  upgradeHoldMs: z.number().int().min(0).max(600_000).default(3000),
});

export const ConfigSchema = z
  .strictObject({
    server: ServerSchema.prefault({}),
    runtime: RuntimeSchema.prefault({}),
    pricing: PricingSchema.prefault({}),
    engine: EngineSchema.prefault({}),
    store: StoreSchema.prefault({}),
    models: z.record(nameSchema, ModelSchema),
    routes: z.record(nameSchema, RouteSchema),
  })
  .superRefine((cfg, ctx) => {
    for (const [name, route] of Object.entries(cfg.routes)) {
      const model = cfg.models[route.model];
      if (model === undefined) {
        ctx.addIssue({ code: 'custom', path: ['routes', name, 'model'], message: `unknown model "${route.model}"` });
        continue;
      }
      for (const v of routeVariantRefs(route)) {
        if (model.variants[v.name] === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes', name, ...v.path],
            message: `model "${route.model}" has no variant "${v.name}"`,
          });
        }
      }
    }
    if (Object.keys(cfg.routes).length === 0)
      ctx.addIssue({ code: 'custom', path: ['routes'], message: 'at least one route is needed' });
    if (cfg.runtime.workers === 0 && cfg.runtime.replicas.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['runtime', 'workers'],
        message: 'no replicas: set workers >= 1 or list runtime.replicas',
      });
    // Nodes found by DNS have no count known in advance.
    const slots =
      cfg.runtime.workers === 'auto' || cfg.runtime.replicas.some((r) => 'dns' in r)
        ? undefined
        : cfg.runtime.workers + cfg.runtime.replicas.reduce((n, r) => n + r.concurrency, 0);
    if (slots !== undefined && cfg.runtime.health.minReadySlots > slots)
      ctx.addIssue({
        code: 'custom',
        path: ['runtime', 'health', 'minReadySlots'],
        message: `${cfg.runtime.health.minReadySlots} ready slots can never be met: the replicas have ${slots}`,
      });
  });

function routeVariantRefs(route: z.infer<typeof RouteSchema>): { name: string; path: (string | number)[] }[] {
  const refs: { name: string; path: (string | number)[] }[] = (route.variants ?? []).map((name, i) => ({
    name,
    path: ['variants', i],
  }));
  // Reported under the key the YAML form uses for the variant.
  if (route.policy.kind !== 'adaptive')
    refs.push({ name: route.policy.variant, path: ['policy', route.policy.kind, 'variant'] });
  return refs;
}

export type Config = z.infer<typeof ConfigSchema>;
export type RouteConfig = z.infer<typeof RouteSchema>;
export type ModelConfig = z.infer<typeof ModelSchema>;
export type SloConfig = z.infer<typeof SloSchema>;
export type PolicyConfig = z.infer<typeof PolicySchema>;
export type PolicyKind = PolicyConfig['kind'];
export type EngineConfig = z.infer<typeof EngineSchema>;
export type RuntimeConfig = z.infer<typeof RuntimeSchema>;
export type DnsReplicaConfig = z.infer<typeof DnsReplicaSchema>;
export type StoreConfig = z.infer<typeof StoreSchema>;

/** Formats zod issues as `path: message` lines, the form every config and admin error uses. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** Expands the references in one string value; an unset variable without default is recorded in `missing`. */
function expand(v: string, env: Readonly<Record<string, string | undefined>>, path: string, missing: string[]): string {
  return v.replace(ENV_REF, (_m, name: string, dflt: string | undefined) => {
    const x = env[name];
    if (x !== undefined && x !== '') return x;
    if (dflt !== undefined) return dflt;
    missing.push(`${path}: environment variable ${name} is not set`);
    return '';
  });
}

/** A value that was exactly one reference takes the YAML type of its expansion (an empty expansion stays ''). */
function typed(out: string): unknown {
  return out === '' ? '' : parseYaml(out);
}

function missingError(missing: readonly string[]): SlogateError {
  return new SlogateError('SLOGATE_ERR_CONFIG', `invalid configuration:\n${missing.map((m) => `  ${m}`).join('\n')}`);
}

/**
 * Replaces ${NAME} and ${NAME:-default} in every string value of a plain document. A value that is exactly one
 * reference takes the YAML type of what it expands to (so a port becomes a number). An unset variable without a
 * default is an error naming its path. (Files go through loadConfigFile, which also honours YAML quoting.)
 */
export function interpolateEnv(doc: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  const missing: string[] = [];
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'string') {
      if (!v.includes('${')) return v;
      const out = expand(v, env, path, missing);
      return WHOLE_REF.test(v) ? typed(out) : out;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}.${i}`));
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, path === '' ? k : `${path}.${k}`)]));
    return v;
  };
  const out = walk(doc, '');
  if (missing.length > 0) throw missingError(missing);
  return out;
}

/** Validates a plain object; throws SLOGATE_ERR_CONFIG listing every problem. Paths are resolved against baseDir. */
export function parseConfig(raw: unknown, baseDir: string, source = 'config'): Readonly<Config> {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const lines = formatIssues(result.error.issues);
    throw new SlogateError(
      'SLOGATE_ERR_CONFIG',
      `invalid configuration in ${source}:\n${lines.map((l) => `  ${l}`).join('\n')}`,
    );
  }
  const cfg = result.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  for (const model of Object.values(cfg.models)) {
    for (const v of Object.values(model.variants)) v.path = abs(v.path);
    if (model.eval !== undefined) model.eval = abs(model.eval);
    if (model.golden !== undefined) model.golden = abs(model.golden);
    const first = Object.values(model.variants)[0];
    model.metadata =
      model.metadata !== undefined ? abs(model.metadata) : resolve(dirname(first?.path ?? baseDir), 'model.yaml');
  }
  cfg.runtime.profile.cacheDir = abs(cfg.runtime.profile.cacheDir);
  cfg.store.dir = abs(cfg.store.dir);
  return deepFreeze(cfg);
}

/** Reads, interpolates, parses and validates a YAML (or JSON) config file. */
export function loadConfigFile(file: string, env: Readonly<Record<string, string | undefined>>): Readonly<Config> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SlogateError('SLOGATE_ERR_CONFIG', `cannot read config file ${file}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0)
    throw new SlogateError(
      'SLOGATE_ERR_CONFIG',
      `invalid configuration in ${file}:\n${doc.errors.map((e) => `  (yaml): ${e.message}`).join('\n')}`,
    );
  // Values only, never comments. A plain scalar that is exactly one reference is typed (port: ${PORT:-8000} is a
  // number); a quoted one stays a string (token: "${TOKEN}").
  const missing: string[] = [];
  visit(doc, {
    Scalar(key, node, ancestry) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const path = ancestry
        .filter((a): a is Pair => isPair(a))
        .map((a) => String((a.key as Scalar | undefined)?.value ?? ''))
        .join('.');
      const out = expand(node.value, env, path, missing);
      node.value = node.type === 'PLAIN' && WHOLE_REF.test(node.value) ? typed(out) : out;
    },
  });
  if (missing.length > 0) throw missingError(missing);
  return parseConfig(doc.toJS() ?? {}, dirname(resolve(file)), file);
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
