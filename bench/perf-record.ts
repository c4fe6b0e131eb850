// Linux `perf` over a measured window: samples every thread of a process, native code and the kernel included, at a
// cost the process barely feels (V8's own profiler adds a sampling thread that, on one core, competes with the event
// loop). The server must run with --perf-basic-prof for JS frames to have names.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';

export interface PerfRecording {
  /** Stops sampling and waits until the data file is written. */
  stop(): Promise<void>;
}

/** Starts `perf record` on one process (every thread) into `file`, sampling at `hz`. */
export async function recordPerf(pid: number, file: string, hz = 2000): Promise<PerfRecording> {
  const child: ChildProcess = spawn('perf', ['record', '-F', String(hz), '-g', '-p', String(pid), '-o', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  // perf prints nothing once attached; a failed start (no perf, not permitted) exits at once.
  const exited = once(child, 'exit');
  const failed = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
  if (failed) throw new Error(`perf record did not start: ${err.trim() || 'is perf installed?'}`);
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
    },
  };
}

export interface PerfShare {
  readonly name: string;
  /** Share of all samples of the recording. */
  readonly share: number;
}

/** The recording's samples by `key` (dso: binary or library; sym: function), the `n` largest, from `perf report`. */
export function perfShares(file: string, key: 'dso' | 'sym', n: number): PerfShare[] {
  const text = execFileSync('perf', ['report', '-i', file, '--no-children', '--sort', key, '-g', 'none', '--stdio'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 64 * 1024 * 1024,
  });
  return parsePerfReport(text, n);
}

/** The first `n` rows of `perf report --stdio -g none` output: `  12.34%  name` or `  1.2%  [.] symbol`. */
export function parsePerfReport(text: string, n: number): PerfShare[] {
  const out: PerfShare[] = [];
  for (const line of text.split('\n')) {
    if (out.length >= n) break;
    const m = /^\s*([\d.]+)%\s+(?:\[[.k]\]\s+)?(.+?)\s*$/.exec(line);
    if (m !== null) out.push({ name: m[2] as string, share: Number(m[1]) / 100 });
  }
  return out;
}
