// Shared test fixtures: a config for the bundled digits family (one worker, no start-up profiling), servers on
// free loopback ports, and eval samples. Real parts only: real workers, real ONNX files, real HTTP.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import type { Config } from '../core/config.js';
import { parseConfig } from '../core/config.js';
import { createSlogate, type Slogate } from '../main.js';

/** The repository root (tests run from dist/test/...). */
export const ROOT = resolve(new URL('../../', import.meta.url).pathname);
export const DIGITS_DIR = join(ROOT, 'models', 'digits');
export const EVAL_PATH = join(DIGITS_DIR, 'eval.bin');
export const VARIANTS = ['tiny', 'small', 'medium', 'medium-int8', 'cnn-small', 'large'] as const;

export type RawConfig = Record<string, unknown>;

/** A raw (unparsed) config for the digits family; `patch` is merged on top (one level deep per section). */
export function digitsRawConfig(patch: RawConfig = {}): RawConfig {
  const base: RawConfig = {
    // A short warm-up: every test server runs the path it takes (test/integration/warmup.test.ts checks it in full).
    server: { host: '127.0.0.1', port: 0, logLevel: 'silent', warmup: { requests: 100 } },
    runtime: { workers: 1, profile: { enabled: false } },
    models: {
      digits: {
        eval: join(DIGITS_DIR, 'eval.bin'),
        metadata: join(DIGITS_DIR, 'model.yaml'),
        maxBatch: 64,
        variants: Object.fromEntries(VARIANTS.map((v) => [v, { path: join(DIGITS_DIR, `${v}.onnx`) }])),
      },
    },
    routes: {
      digits: { model: 'digits', slo: { p99Ms: 200 } },
    },
  };
  const out: RawConfig = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const b = base[k];
    out[k] =
      b !== undefined && typeof b === 'object' && typeof v === 'object' && v !== null && !Array.isArray(v)
        ? { ...(b as object), ...(v as object) }
        : v;
  }
  return out;
}

export function digitsConfig(patch: RawConfig = {}): Readonly<Config> {
  return parseConfig(digitsRawConfig(patch), ROOT, 'test config');
}

export function tempDir(prefix = 'slogate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Starts slogate in-process on a free loopback port; returns it and its base URL. */
export async function startSlogate(config: Readonly<Config> = digitsConfig()): Promise<{ sg: Slogate; url: string }> {
  const sg = await createSlogate({ config, logger: pino({ level: 'silent' }), defaultMetrics: false });
  const url = await sg.listen(0);
  return { sg, url };
}
