// Shared test fixtures: a config for the bundled digits family (one worker, no start-up profiling), servers on
// free loopback ports, and eval samples. Real parts only: real workers, real ONNX files, real HTTP.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
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

/**
 * Polls `cond` until it holds; fails after `timeoutMs` naming `what` and, when given, the state `detail()` returns,
 * so a timeout says what the system looked like rather than only that it was slow.
 */
export async function until(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  detail?: () => unknown,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) {
      assert.fail(
        `timed out after ${timeoutMs} ms waiting for ${what}${detail ? `: ${JSON.stringify(detail())}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A loopback port free at the time of the call (the kernel's choice of an ephemeral port). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
    s.once('error', reject);
  });
}

/** The whole HTTP answers (head and Content-Length body) in `text`, read as latin1: each one's head. */
export function wholeAnswers(text: string): string[] {
  const heads: string[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return heads;
    const head = text.slice(at, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (text.length < end + 4 + length) return heads;
    heads.push(head);
    at = end + 4 + length;
  }
}
