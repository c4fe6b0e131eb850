// `slogate serve` as a child process for the shutdown tests: a small config, its output watched for a pattern, its
// exit (status, signal, time) as a promise.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DIGITS_DIR, ROOT, tempDir } from '../helpers.js';

const CLI = join(ROOT, 'dist', 'cli.js');

/** One tiny variant, no profiling and no warm-up (a child that starts fast); `patch` merged per section. */
export function writeTinyConfig(patch: { server?: object; runtime?: object; variants?: string[] } = {}): string {
  const file = join(tempDir(), 'slogate.yaml');
  const variants = patch.variants ?? ['tiny'];
  const raw = {
    server: { host: '127.0.0.1', port: 0, logLevel: 'warn', warmup: { requests: 0 }, ...patch.server },
    runtime: { workers: 1, profile: { enabled: false }, ...patch.runtime },
    models: {
      digits: {
        maxBatch: 64,
        variants: Object.fromEntries(variants.map((v) => [v, { path: join(DIGITS_DIR, `${v}.onnx`) }])),
      },
    },
    routes: { digits: { model: 'digits', slo: { p99Ms: 1000 }, policy: { static: { variant: variants[0] } } } },
  };
  writeFileSync(file, stringify(raw));
  return file;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** performance.now() at the exit. */
  readonly atMs: number;
}

export interface ServeProcess {
  readonly proc: ChildProcess;
  readonly exited: Promise<Exit>;
  /** Resolves with the first match of `pattern` in stdout or stderr (what was written so far included). */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGKILL if still running (a test's finally). */
  kill(): void;
  /** Everything written to stdout and stderr so far. */
  output(): string;
}

export function spawnServe(config: string): ServeProcess {
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const watchers = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of watchers) w();
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<Exit>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, atMs: performance.now() })),
  );
  const waitFor = (pattern: RegExp, timeoutMs: number) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        watchers.delete(check);
      };
      const check = () => {
        const m = out.match(pattern);
        if (m !== null) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms:\n${out}`));
      }, timeoutMs);
      watchers.add(check);
      void exited.then((e) => {
        if (!watchers.has(check)) return;
        done();
        reject(new Error(`exited (${e.code ?? e.signal}) before ${pattern}:\n${out}`));
      });
      check();
    });
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  return { proc, exited, waitFor, kill, output: () => out };
}

/** Spawns and waits for the `ready: URL` line; returns the process and its URL. */
export async function startServe(config: string): Promise<ServeProcess & { url: string }> {
  const p = spawnServe(config);
  try {
    const m = await p.waitFor(/ready: (http:\/\/127\.0\.0\.1:\d+)/, 30_000);
    return { ...p, url: m[1] as string };
  } catch (err) {
    p.kill();
    throw err;
  }
}
