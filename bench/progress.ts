// The live line while a run goes: elapsed, sent, rate, p99 so far. Rewritten in place on a terminal, one line every
// five seconds otherwise, nothing at all when quiet (--json, CI).
import type { Progress } from './open-loop.js';

export type ProgressSink = ((p: Progress) => void) | undefined;

export function progressLine(label: string, p: Progress): string {
  const p99 = Number.isFinite(p.p99Ms) ? `${p.p99Ms.toFixed(1)} ms` : '-';
  return `${label}  ${p.elapsedS.toFixed(0).padStart(3)} s  sent ${String(p.sent).padStart(7)}  ${String(p.rate).padStart(5)}/s  in flight ${String(p.inflight).padStart(4)}  p99 so far ${p99}  errors ${p.errors}`;
}

export function progressPrinter(
  label: string,
  quiet: boolean,
  stream: NodeJS.WriteStream = process.stderr,
): { sink: ProgressSink; done(): void } {
  if (quiet) return { sink: undefined, done: () => {} };
  const tty = stream.isTTY === true;
  let printed = false;
  let last = 0;
  return {
    sink: (p) => {
      const line = progressLine(label, p);
      if (tty) {
        stream.write(`\r${line.padEnd(stream.columns > 0 ? Math.min(stream.columns - 1, 140) : 120)}`);
        printed = true;
      } else if (p.elapsedS - last >= 5) {
        last = p.elapsedS;
        stream.write(`${line}\n`);
      }
    },
    done: () => {
      if (tty && printed) stream.write('\n');
    },
  };
}
