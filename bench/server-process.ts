// Servers under test run as child processes (so the load generator never shares their event loop), started on a
// free loopback port, and stopped by PID: SIGTERM, then SIGKILL if they do not exit in time.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import { GC_ENV, gcFlags } from '../core/gc-mode.js';

export interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Sends SIGTERM (SIGKILL after graceMs); resolves with the exit code. Idempotent. */
  stop(graceMs?: number): Promise<number | null>;
}

const DIST = new URL('../', import.meta.url).pathname;

/**
 * The V8 flags `slogate serve|runtime` would relaunch itself with (core/gc-mode.ts), given up front so the server is
 * the process started: signals and the CPU probe reach it. Cores: the pinned list's size, else this host's.
 */
function launchFlags(script: string, args: readonly string[], env: NodeJS.ProcessEnv, cpus?: string): string[] {
  if (basename(script) !== 'cli.js' || (args[0] !== 'serve' && args[0] !== 'runtime')) return [];
  const cores = cpus === undefined ? availableParallelism() : cpuCount(cpus);
  return gcFlags(env[GC_ENV], cores, []);
}

/** CPUs in a taskset list such as `1` or `0,2-3`. */
function cpuCount(list: string): number {
  return list.split(',').reduce((n, part) => {
    const [a, b] = part.split('-').map(Number);
    return n + (b === undefined ? 1 : (b as number) - (a as number) + 1);
  }, 0);
}

/** Starts a node script that prints a line containing its http://127.x.y.z:PORT address once ready. */
export function startNodeProcess(
  script: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; readyTimeoutMs?: number; cpus?: string } = {},
): Promise<ServerProcess> {
  const argv = [...launchFlags(script, args, options.env ?? process.env, options.cpus), script, ...args];
  const child =
    options.cpus !== undefined
      ? spawn('taskset', ['-c', options.cpus, process.execPath, ...argv], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: options.env ?? process.env,
        })
      : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let out = '';
  let stopping: Promise<number | null> | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = (graceMs = 15_000): Promise<number | null> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    })();
    return stopping;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop(1000);
      reject(
        new Error(
          `${script} did not become ready within ${options.readyTimeoutMs ?? 120_000} ms:\n${out.slice(-2000)}`,
        ),
      );
    }, options.readyTimeoutMs ?? 120_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = out.match(/ready: (http:\/\/127\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+)/);
      if (m !== null) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve({ url: m[1] as string, pid: child.pid as number, child, stop });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before it was ready:\n${out.slice(-2000)}`));
    });
  });
}

/** Writes a config (raw object) to a temp file and starts `slogate serve` on a free port (of 127.0.0.1 or `host`). */
export function startSlogateProcess(
  config: Record<string, unknown>,
  options: {
    env?: NodeJS.ProcessEnv;
    cpus?: string;
    command?: 'serve' | 'runtime';
    port?: number;
    host?: string;
    /** More arguments for the command (e.g. --processes 2). */
    args?: readonly string[];
  } = {},
): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'slogate-bench-'));
  const file = join(dir, 'slogate.yaml');
  writeFileSync(file, stringify(config));
  return startNodeProcess(
    join(DIST, 'cli.js'),
    [
      options.command ?? 'serve',
      '--config',
      file,
      '--host',
      options.host ?? '127.0.0.1',
      '--port',
      String(options.port ?? 0),
      ...(options.args ?? []),
    ],
    options,
  );
}
