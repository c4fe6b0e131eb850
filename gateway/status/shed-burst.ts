// Logs load shedding once per burst instead of once per request: the first refusals after a quiet spell open a
// burst (one warning with counts by route and code), a long burst is summarised at most every repeatMs, and it
// closes with its totals after quietMs without a refusal. It samples slogate_shed_total on an unref'd timer, so the
// request path pays nothing.
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';

/** One cumulative counter value: refusals of a route with an error code. */
export interface ShedSample {
  readonly route: string;
  readonly code: string;
  readonly value: number;
}

export interface ShedBurstOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Reads the cumulative counts (slogate_shed_total). */
  readonly read: () => Promise<readonly ShedSample[]> | readonly ShedSample[];
  readonly pollMs?: number;
  readonly repeatMs?: number;
  readonly quietMs?: number;
}

/** Counts by route, then by error code. */
export type ShedCounts = Record<string, Record<string, number>>;

interface Burst {
  readonly startedMs: number;
  lastShedMs: number;
  lastLogMs: number;
  total: number;
  readonly counts: Map<string, number>;
  sinceLog: Map<string, number>;
}

const SEP = '\u0000';

export class ShedBurstLog {
  readonly #o: Required<Omit<ShedBurstOptions, 'read'>> & Pick<ShedBurstOptions, 'read'>;
  readonly #last = new Map<string, number>();
  #burst: Burst | undefined;
  #timer: TimerHandle | undefined;
  #running = false;
  #polling = false;

  constructor(options: ShedBurstOptions) {
    this.#o = { pollMs: 1000, repeatMs: 30_000, quietMs: 5000, ...options };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  close(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** True while a burst is open. */
  get inBurst(): boolean {
    return this.#burst !== undefined;
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#timer = this.#o.clock.setTimer(() => {
      this.#timer = undefined;
      this.poll().finally(() => this.#schedule());
    }, this.#o.pollMs);
  }

  /** One sample: new refusals since the last one open or extend a burst; a quiet spell closes it. */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const samples = await this.#o.read();
      this.#observe(samples, this.#o.clock.now());
    } catch (err) {
      this.#o.logger.debug({ err }, 'shed burst log: reading the shed counter failed');
    } finally {
      this.#polling = false;
    }
  }

  #observe(samples: readonly ShedSample[], now: number): void {
    const delta = new Map<string, number>();
    let total = 0;
    for (const s of samples) {
      const key = `${s.route}${SEP}${s.code}`;
      const d = s.value - (this.#last.get(key) ?? 0);
      this.#last.set(key, s.value);
      if (d > 0) {
        delta.set(key, d);
        total += d;
      }
    }
    const b = this.#burst;
    if (total > 0) {
      if (b === undefined) {
        this.#burst = {
          startedMs: now,
          lastShedMs: now,
          lastLogMs: now,
          total,
          counts: new Map(delta),
          sinceLog: new Map(),
        };
        this.#o.logger.warn(
          { shed: total, counts: toCounts(delta) },
          `shedding load: ${total} requests refused or dropped (${summary(delta)})`,
        );
        return;
      }
      b.lastShedMs = now;
      b.total += total;
      add(b.counts, delta);
      add(b.sinceLog, delta);
      if (now - b.lastLogMs >= this.#o.repeatMs) {
        const n = sum(b.sinceLog);
        this.#o.logger.warn(
          { shed: n, counts: toCounts(b.sinceLog), burstMs: Math.round(now - b.startedMs) },
          `still shedding load: ${n} more requests refused or dropped in the last ${Math.round((now - b.lastLogMs) / 1000)} s (${summary(b.sinceLog)})`,
        );
        b.lastLogMs = now;
        b.sinceLog = new Map();
      }
      return;
    }
    if (b !== undefined && now - b.lastShedMs >= this.#o.quietMs) {
      this.#burst = undefined;
      const durationMs = Math.round(b.lastShedMs - b.startedMs);
      this.#o.logger.info(
        { shed: b.total, counts: toCounts(b.counts), burstMs: durationMs },
        `load shedding stopped: ${b.total} requests refused or dropped over ${Math.max(1, Math.round(durationMs / 1000))} s (${summary(b.counts)})`,
      );
    }
  }
}

function add(into: Map<string, number>, from: ReadonlyMap<string, number>): void {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

function sum(m: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

export function toCounts(m: ReadonlyMap<string, number>): ShedCounts {
  const out: ShedCounts = {};
  for (const [k, v] of m) {
    const [route, code] = k.split(SEP) as [string, string];
    const r = out[route] ?? {};
    r[code] = v;
    out[route] = r;
  }
  return out;
}

function summary(m: ReadonlyMap<string, number>): string {
  return [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([k, v]) => `${k.replace(SEP, ' ')}: ${v}`)
    .join(', ');
}
