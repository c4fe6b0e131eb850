// `slogate <command>`: the entry point. `serve` and `runtime` first choose V8's GC mode (core/gc-mode.ts) and, when
// it needs a flag this process was not started with, run again as a child with it; everything else is cli-main.ts.
import { availableParallelism } from 'node:os';
import { GC_ENV, gcFlags } from './core/gc-mode.js';
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
else await import('./cli-main.js');
