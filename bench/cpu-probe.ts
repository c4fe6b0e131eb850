// Preloaded into a server under measurement (node --import): SIGUSR2 opens a window, the next SIGUSR2 closes it and
// prints one `cpu-probe: {json}` line with the process's CPU, each thread's CPU (Linux /proc), the event loop's
// utilisation and the main heap's allocation and collections over the window. With SLOGATE_CPU_PROF set to a file,
// the main thread is CPU-profiled over the window.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import { GCProfiler, getHeapSpaceStatistics } from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { type GcRecord, type HeapReport, heapReport, type SpaceSizes, spaceSizes } from './heap-report.js';
import { parseStat } from './proc-stat.js';

export interface ThreadCpu {
  readonly tid: number;
  readonly name: string;
  readonly cpuMs: number;
}

export interface ProbeReport {
  readonly wallMs: number;
  readonly userMs: number;
  readonly systemMs: number;
  readonly eventLoopUtilization: number;
  readonly threads: readonly ThreadCpu[];
  readonly heap: HeapReport;
}

function threadTimes(): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const { name, cpuMs } = parseStat(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'));
      out.set(Number(tid), { name, ms: cpuMs });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function install(): void {
  const profileFile = process.env.SLOGATE_CPU_PROF;
  let open:
    | {
        t0: number;
        cpu: NodeJS.CpuUsage;
        elu: EventLoopUtilization;
        threads: Map<number, { name: string; ms: number }>;
        gc: GCProfiler;
        spaces: SpaceSizes;
      }
    | undefined;
  let session: Session | undefined;
  process.on('SIGUSR2', () => {
    if (open === undefined) {
      if (profileFile !== undefined) {
        session = new Session();
        session.connect();
        session.post('Profiler.enable');
        session.post('Profiler.setSamplingInterval', { interval: 100 });
        session.post('Profiler.start');
      }
      open = {
        t0: performance.now(),
        cpu: process.cpuUsage(),
        elu: performance.eventLoopUtilization(),
        threads: threadTimes(),
        gc: new GCProfiler(),
        spaces: spaceSizes(getHeapSpaceStatistics()),
      };
      open.gc.start();
      return;
    }
    const w = open;
    open = undefined;
    const gcs = (w.gc.stop() as { statistics: GcRecord[] }).statistics;
    const heap = heapReport(w.spaces, spaceSizes(getHeapSpaceStatistics()), gcs);
    const cpu = process.cpuUsage(w.cpu);
    const elu = performance.eventLoopUtilization(w.elu);
    const threads: ThreadCpu[] = [];
    for (const [tid, t] of threadTimes()) {
      const cpuMs = t.ms - (w.threads.get(tid)?.ms ?? 0);
      if (cpuMs > 0) threads.push({ tid, name: t.name, cpuMs });
    }
    const report: ProbeReport = {
      wallMs: performance.now() - w.t0,
      userMs: cpu.user / 1000,
      systemMs: cpu.system / 1000,
      eventLoopUtilization: elu.utilization,
      threads,
      heap,
    };
    process.stdout.write(`cpu-probe: ${JSON.stringify(report)}\n`);
    const s = session;
    session = undefined;
    if (s !== undefined && profileFile !== undefined)
      s.post('Profiler.stop', (err, r) => {
        if (err === null) writeFileSync(profileFile, JSON.stringify(r.profile));
        s.disconnect();
        process.stdout.write('cpu-probe: profile written\n');
      });
  });
}

if (isMainThread) install();
