// A runtime node's load, as an ORCA load report (the format Envoy and gRPC read from the `endpoint-load-metrics`
// response header): slots busy and total, queued rows and their estimated wait, and the node's service-time correction,
// as named metrics, with application_utilization = busy / total for balancers that know only the standard fields.
// Reports come from other processes, so parsing is strict: bounded length, finite non-negative numbers, no duplicates.

export const LOAD_REPORT_HEADER = 'endpoint-load-metrics';
/** Longest header value accepted; a real report is about 200 bytes. */
export const MAX_REPORT_CHARS = 2048;

export interface NodeLoad {
  readonly busySlots: number;
  readonly totalSlots: number;
  readonly queuedRows: number;
  /** Estimated time for the node's queue to drain, in ms. */
  readonly queueWaitMs: number;
  /** Observed over predicted service time on the node (1 = as profiled). */
  readonly serviceCorrection: number;
}

export type LoadReportFormat = 'TEXT' | 'JSON';

const NAMED: readonly (readonly [keyof NodeLoad, string])[] = [
  ['busySlots', 'slots_busy'],
  ['totalSlots', 'slots_total'],
  ['queuedRows', 'queue_rows'],
  ['queueWaitMs', 'queue_wait_ms'],
  ['serviceCorrection', 'service_correction'],
];
const STANDARD = new Set([
  'cpu_utilization',
  'mem_utilization',
  'application_utilization',
  'rps_fractional',
  'eps',
  'rps',
]);

/** The header value for `load` in the given ORCA form. */
export function encodeLoadReport(load: NodeLoad, format: LoadReportFormat = 'TEXT'): string {
  const utilisation = load.totalSlots > 0 ? load.busySlots / load.totalSlots : 0;
  if (format === 'JSON') {
    const named = Object.fromEntries(NAMED.map(([field, name]) => [name, load[field]]));
    return `JSON ${JSON.stringify({ application_utilization: utilisation, named_metrics: named })}`;
  }
  let text = `TEXT application_utilization=${utilisation}`;
  for (const [f, n] of NAMED) text += `, named_metrics.${n}=${load[f]}`;
  return text;
}

export type ParsedLoadReport =
  | { readonly ok: true; readonly load: NodeLoad }
  | { readonly ok: false; readonly why: string };

/** Reads a header value written by encodeLoadReport (or any ORCA TEXT/JSON report carrying slogate's named metrics). */
export function parseLoadReport(value: string | undefined): ParsedLoadReport {
  if (value === undefined || value === '') return fail('no load report');
  if (value.length > MAX_REPORT_CHARS) return fail(`load report over ${MAX_REPORT_CHARS} characters`);
  const named = value.startsWith('TEXT ')
    ? readText(value.slice(5))
    : value.startsWith('JSON ')
      ? readJson(value.slice(5))
      : `unsupported load report format ${JSON.stringify(value.slice(0, 8))}`;
  if (typeof named === 'string') return fail(named);
  const load: Record<string, number> = {};
  for (const [field, name] of NAMED) {
    const v = named.get(name);
    if (v === undefined) return fail(`load report lacks named_metrics.${name}`);
    load[field] = v;
  }
  if ((load.busySlots as number) > (load.totalSlots as number))
    return fail('load report has more busy slots than slots');
  return { ok: true, load: load as unknown as NodeLoad };
}

function fail(why: string): ParsedLoadReport {
  return { ok: false, why };
}

function readText(body: string): Map<string, number> | string {
  const out = new Map<string, number>();
  for (const item of body.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) return `malformed load report item ${JSON.stringify(item.trim().slice(0, 40))}`;
    const key = item.slice(0, eq).trim();
    const err = addMetric(out, key, Number(item.slice(eq + 1).trim()));
    if (err !== undefined) return err;
  }
  return out;
}

function readJson(body: string): Map<string, number> | string {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return 'load report JSON does not parse';
  }
  if (typeof raw !== 'object' || raw === null) return 'load report JSON is not an object';
  const out = new Map<string, number>();
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    if (key === 'named_metrics' || key === 'namedMetrics') {
      if (typeof v !== 'object' || v === null) return 'load report named_metrics is not an object';
      for (const [name, x] of Object.entries(v as Record<string, unknown>)) {
        const err = addMetric(out, `named_metrics.${name}`, typeof x === 'number' ? x : Number.NaN);
        if (err !== undefined) return err;
      }
    } else if (!STANDARD.has(key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`))) {
      return `unknown load report field ${JSON.stringify(key.slice(0, 40))}`;
    }
  }
  return out;
}

/** Adds one `named_metrics.<name>` value; standard ORCA fields are accepted and ignored. */
function addMetric(out: Map<string, number>, key: string, value: number): string | undefined {
  if (!Number.isFinite(value) || value < 0)
    return `load report value of ${key.slice(0, 60)} is not a finite number >= 0`;
  if (STANDARD.has(key)) return undefined;
  if (!key.startsWith('named_metrics.') || key.length === 'named_metrics.'.length)
    return `unknown load report field ${JSON.stringify(key.slice(0, 40))}`;
  const name = key.slice('named_metrics.'.length);
  if (out.has(name)) return `load report repeats ${name.slice(0, 40)}`;
  out.set(name, value);
  return undefined;
}
