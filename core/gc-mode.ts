// The V8 garbage collector's mode for `slogate serve` and `slogate runtime`, chosen before the process starts (V8
// reads these flags at start-up only). On one core, a parallel scavenge hands work to V8's helper threads and waits
// for them while they queue for the core behind the event loop and the worker thread: young collections of 1-3 ms
// pause the event loop for 10-25 ms. Single-threaded GC keeps each collection on the thread that needs it
// (BENCHMARKS.md, "Garbage collection on one core"; on two cores it measured neither better nor worse). Flags V8
// reads as it runs (allocation-site pretenuring) are set in the process itself instead, before the server loads.
import { setFlagsFromString } from 'node:v8';
import { SlogateError } from './errors.js';

/** The environment variable that overrides the choice: auto (the default), single or parallel. */
export const GC_ENV = 'SLOGATE_GC';
/** Largest number of usable cores on which `auto` picks single-threaded GC. */
export const SINGLE_THREADED_GC_MAX_CORES = 1;
const SINGLE = '--single-threaded-gc';
const CHOSEN = [SINGLE, '--no-single-threaded-gc'];

/**
 * The V8 flags a `serve` or `runtime` process should start with, given `SLOGATE_GC`, the cores it may use and the
 * flags it was started with: none when those already choose (a flag given by hand wins).
 */
export function gcFlags(mode: string | undefined, cores: number, execArgv: readonly string[]): string[] {
  const m = mode === undefined || mode === '' ? 'auto' : mode;
  if (m !== 'auto' && m !== 'single' && m !== 'parallel')
    throw new SlogateError('SLOGATE_ERR_CONFIG', `${GC_ENV} must be auto, single or parallel, got '${mode}'`);
  if (execArgv.some((a) => CHOSEN.includes(a))) return [];
  const single = m === 'single' || (m === 'auto' && cores <= SINGLE_THREADED_GC_MAX_CORES);
  return single ? [SINGLE] : [];
}

/** Whether this process runs with single-threaded GC (for the start-up log). */
export function singleThreadedGc(execArgv: readonly string[]): boolean {
  return execArgv.lastIndexOf(SINGLE) > execArgv.lastIndexOf('--no-single-threaded-gc');
}

const PRETENURING = ['--allocation-site-pretenuring', '--no-allocation-site-pretenuring'];
const NO_PRETENURING = '--no-allocation-site-pretenuring';
let applied: readonly string[] = [];

/**
 * The V8 flags set at run time for `serve` and `runtime`, before the server's code loads: allocation-site
 * pretenuring off, unless a pretenuring flag was given by hand. V8 allocates a site's objects straight into the old
 * generation once most of them survived a scavenge; on the request path that misfires (objects that live for one
 * request, caught alive by a scavenge in a burst), and that garbage keeps the young objects it points to alive until
 * the next mark-compact (BENCHMARKS.md, "Objects that live for one request, kept in the old generation").
 */
export function runtimeGcFlags(execArgv: readonly string[]): string[] {
  return execArgv.some((a) => PRETENURING.includes(a)) ? [] : [NO_PRETENURING];
}

/** Sets `runtimeGcFlags` in this process; V8 reads them as it runs, so this must come before the server's code. */
export function applyRuntimeGcFlags(execArgv: readonly string[]): void {
  applied = runtimeGcFlags(execArgv);
  for (const flag of applied) setFlagsFromString(flag);
}

/** Whether allocation-site pretenuring is on in this process (for the start-up log). */
export function pretenuring(execArgv: readonly string[]): boolean {
  if (applied.includes(NO_PRETENURING)) return false;
  return execArgv.lastIndexOf('--allocation-site-pretenuring') >= execArgv.lastIndexOf(NO_PRETENURING);
}
