// Keeps a DNS name's endpoints current: resolves on an interval and on demand (a replica failing is a hint that the
// set changed), reports what was added and removed, and keeps the last known set while DNS is failing.
import type { Clock, TimerHandle } from '../core/clock.js';
import { type DnsTarget, diffEndpoints, type Endpoint, makeResolver, resolveEndpoints } from './dns-endpoints.js';

export interface DnsDiscoveryOptions {
  readonly target: DnsTarget;
  readonly clock: Clock;
  /** Time between resolutions while DNS answers. */
  readonly intervalMs: number;
  /** Time before the next try after a failed resolution (doubling up to intervalMs). */
  readonly retryMs?: number;
  readonly onChange: (added: readonly Endpoint[], removed: readonly Endpoint[]) => void;
  readonly onError?: (err: Error) => void;
  /** Resolution, replaceable in unit tests; the default asks the target's resolver (or the system's). */
  readonly resolve?: (target: DnsTarget) => Promise<Endpoint[]>;
}

export class DnsDiscovery {
  readonly #o: DnsDiscoveryOptions;
  readonly #resolve: (target: DnsTarget) => Promise<Endpoint[]>;
  #known: Endpoint[] = [];
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #failures = 0;
  #closed = false;

  constructor(options: DnsDiscoveryOptions) {
    this.#o = options;
    const resolver = makeResolver(options.target.resolver);
    this.#resolve = options.resolve ?? ((t) => resolveEndpoints(t, resolver));
  }

  /** The endpoints of the last successful resolution. */
  get endpoints(): readonly Endpoint[] {
    return this.#known;
  }

  /** Resolves now (joining a resolution already running), then on the interval. */
  refresh(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#running ??= this.#resolveOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  async #resolveOnce(): Promise<void> {
    let next: Endpoint[];
    try {
      next = await this.#resolve(this.#o.target);
    } catch (err) {
      this.#failures++;
      this.#o.onError?.(err as Error);
      this.#schedule(this.#retryDelay());
      return;
    }
    this.#failures = 0;
    if (this.#closed) return;
    const { added, removed } = diffEndpoints(this.#known, next);
    this.#known = next;
    if (added.length > 0 || removed.length > 0) this.#o.onChange(added, removed);
    this.#schedule(this.#o.intervalMs);
  }

  #retryDelay(): number {
    const base = this.#o.retryMs ?? Math.min(1000, this.#o.intervalMs);
    return Math.min(this.#o.intervalMs, base * 2 ** (this.#failures - 1));
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#timer = this.#o.clock.setTimer(() => {
      this.#timer = undefined;
      void this.refresh();
    }, delayMs);
  }
}
