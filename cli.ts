// `slogate <command>`: the entry point. `serve` and `runtime` first choose V8's GC mode (core/gc-mode.ts) and, when
// it needs a flag this process was not started with, run again as a child with it; then they set the flags V8 takes
// at run time, before cli-main.ts (everything else) loads.
import { availableParallelism } from 'node:os';
import { applyRuntimeGcFlags, GC_ENV, gcFlags } from './core/gc-mode.js';
import { relaunch } from './core/relaunch.js';

const [cmd] = process.argv.slice(2);
let flags: string[] = [];
if (cmd === 'serve' || cmd === 'runtime') {
  try {
    flags = gcFlags(process.env[GC_ENV], availableParallelism(), process.execArgv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}
if (flags.length > 0) relaunch(flags, process.argv.slice(1));
else {
  if (cmd === 'serve' || cmd === 'runtime') applyRuntimeGcFlags(process.execArgv);
  await import('./cli-main.js');
}
