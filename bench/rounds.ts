// Closed-loop cells (a server and the requests sent to it) measured in alternating rounds: each cell runs once per
// round, in an order that turns by one each round. On a shared host, load from elsewhere comes in bursts of seconds;
// measured one after the other, a burst lands on whichever cell ran then and skews every ratio to it. Alternated, it
// lands on one round of each, and ratios between cells are taken round by round, their median reported.

import { closedLoop } from './closed-loop.js';
import { Histogram } from './histogram.js';
import { processCpuMs } from './proc-stat.js';
import { type Batches, batchesIn, scrape } from './prom.js';
import type { ServerProcess } from './server-process.js';

export interface Cell {
  readonly target: string;
  readonly protocol: string;
  readonly server: ServerProcess;
  readonly path: string;
  readonly bodies: readonly { body: Buffer; headers: Record<string, string> }[];
  /** For slogate: the variant (model/variant) whose batches its /metrics report. */
  readonly variant?: string;
}

export interface CellResult {
  readonly target: string;
  readonly protocol: string;
  readonly requests: number;
  readonly rps: number;
  /** The server process's CPU (all threads) per answered request, over the measured rounds. */
  readonly cpuUsPerRequest: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  /** Slogate's batches of the cell's variant over the measured rounds. */
  readonly batches: Batches | undefined;
  /** Requests/s in each round. */
  readonly roundRps: readonly number[];
}

export interface RoundsOptions {
  readonly rounds: number;
  /** Measured seconds per cell and round. */
  readonly roundS: number;
  /** Seconds per cell before the first round, not measured. */
  readonly warmupS: number;
  readonly connections: number;
}

interface Tally {
  requests: number;
  wallMs: number;
  cpuMs: number;
  errors: number;
  non2xx: number;
  batches: Batches | undefined;
  readonly latency: Histogram;
  readonly roundRps: number[];
}

export async function measureInRounds(cells: readonly Cell[], o: RoundsOptions): Promise<CellResult[]> {
  const load = (c: Cell) => ({ url: c.server.url, path: c.path, bodies: c.bodies, connections: o.connections });
  for (const c of cells) await closedLoop({ ...load(c), durationS: o.warmupS });
  const tallies = cells.map(
    (): Tally => ({
      requests: 0,
      wallMs: 0,
      cpuMs: 0,
      errors: 0,
      non2xx: 0,
      batches: undefined,
      latency: new Histogram(),
      roundRps: [],
    }),
  );
  for (let round = 0; round < o.rounds; round++)
    for (const i of roundOrder(cells.length, round)) {
      const c = cells[i] as Cell;
      const t = tallies[i] as Tally;
      const before = c.variant === undefined ? undefined : await scrape(c.server.url);
      const cpu0 = processCpuMs(c.server.pid);
      const r = await closedLoop({ ...load(c), durationS: o.roundS, latency: t.latency });
      t.cpuMs += processCpuMs(c.server.pid) - cpu0;
      t.requests += r.requests;
      t.wallMs += r.wallMs;
      t.errors += r.errors;
      t.non2xx += r.non2xx;
      t.roundRps[round] = r.rps;
      if (c.variant !== undefined)
        t.batches = addBatches(t.batches, batchesIn(before, await scrape(c.server.url), c.variant));
    }
  return cells.map((c, i) => result(c, tallies[i] as Tally));
}

/** The cells' order in a round: turned by one each round, so each cell runs in every position in turn. */
export function roundOrder(cells: number, round: number): number[] {
  return Array.from({ length: cells }, (_, k) => (k + round) % cells);
}

function result(c: Cell, t: Tally): CellResult {
  return {
    target: c.target,
    protocol: c.protocol,
    requests: t.requests,
    rps: (t.requests * 1000) / Math.max(1, t.wallMs),
    cpuUsPerRequest: t.requests > 0 ? (t.cpuMs * 1000) / t.requests : Number.NaN,
    p50Ms: t.latency.quantileMs(0.5),
    p99Ms: t.latency.quantileMs(0.99),
    errors: t.errors,
    non2xx: t.non2xx,
    batches: t.batches,
    roundRps: t.roundRps,
  };
}

function addBatches(a: Batches | undefined, b: Batches | undefined): Batches | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return { count: a.count + b.count, rows: a.rows + b.rows, inline: a.inline + b.inline };
}

/** `a`'s requests/s over `b`'s, round by round. */
export function roundRatios(a: CellResult, b: CellResult): number[] {
  return a.roundRps.map((rps, i) => rps / (b.roundRps[i] as number));
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
