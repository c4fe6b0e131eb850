// CPU time from Linux /proc stat lines, for a process (all its threads) or one thread.
import { readFileSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on every Linux Node supports

/** A stat line's name and its user + system CPU in ms. The name sits in parentheses and may hold spaces. */
export function parseStat(stat: string): { name: string; cpuMs: number } {
  const close = stat.lastIndexOf(')');
  const f = stat.slice(close + 2).split(' ');
  return { name: stat.slice(stat.indexOf('(') + 1, close), cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS };
}

/** A process's CPU, all its threads, in ms. */
export function processCpuMs(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuMs;
}
