// Engine snapshots as plain JSON (Maps as objects, typed arrays as arrays, non-finite numbers as strings), so a
// decision can be recorded from a live server (GET /admin/engine/snapshot) and replayed offline with decide().
import type { EngineSnapshot } from './engine/index.js';
import type { VariantModel } from './latency-model.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function num(x: number): Json {
  return Number.isFinite(x) ? x : String(x);
}

function unnum(x: unknown): number {
  return typeof x === 'string' ? Number(x) : (x as number);
}

function encode(v: unknown): Json {
  if (typeof v === 'number') return num(v);
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof Float64Array) return Array.from(v, num);
  if (Array.isArray(v)) return v.map(encode);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), encode(x)]));
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, encode(x)]));
  return null;
}

export function serializeSnapshot(s: EngineSnapshot): Json {
  return encode(s);
}

/** Rebuilds a snapshot from serializeSnapshot()'s JSON (numbers, Maps and typed arrays restored). */
export function deserializeSnapshot(raw: unknown): EngineSnapshot {
  const r = raw as Record<string, unknown>;
  const fixNumbers = (o: unknown): unknown => {
    if (typeof o === 'string' && /^(-?Infinity|NaN)$/.test(o)) return Number(o);
    if (Array.isArray(o)) return o.map(fixNumbers);
    if (o !== null && typeof o === 'object')
      return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fixNumbers(x)]));
    return o;
  };
  const variants = new Map<string, Map<string, VariantModel>>();
  for (const [model, vs] of Object.entries(
    (r.variants ?? {}) as Record<string, Record<string, Record<string, unknown>>>,
  )) {
    const m = new Map<string, VariantModel>();
    for (const [name, v] of Object.entries(vs)) {
      const table = v.table as { p50: unknown[]; p99: unknown[] };
      m.set(name, {
        name,
        accuracy: unnum(v.accuracy),
        maxBatch: unnum(v.maxBatch),
        pricePerSlotMs: unnum(v.pricePerSlotMs),
        table: { p50: Float64Array.from(table.p50, unnum), p99: Float64Array.from(table.p99, unnum) },
        ...(v.extraWorkShare == null ? {} : { extraWorkShare: unnum(v.extraWorkShare) }),
      });
    }
    variants.set(model, m);
  }
  const rest = fixNumbers({ ...r, variants: undefined }) as Omit<EngineSnapshot, 'variants'>;
  return { ...rest, variants };
}
