// server.watchConfig: re-reads the config file when it changes and applies the difference through the apply path.
// The directory is watched, not the file: a Kubernetes ConfigMap update swaps the `..data` symlink, which replaces
// the file without writing to it. Events are debounced and the content hashed, so one change applies once; a file
// that does not parse or validate is logged and counted, and the running config keeps serving untouched.
import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';
import { type Config, loadConfigFile } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { ApplyReport } from '../policies/apply-executor.js';
import { describeStep } from '../policies/apply-plan.js';

export interface ConfigWatchDeps {
  readonly file: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly apply: (config: Readonly<Config>) => Promise<ApplyReport>;
  /** Quiet time after the last event before the file is read (writers and symlink swaps come in bursts). */
  readonly debounceMs?: number;
  /** A re-read on a timer as well, where file events are not delivered (some network and overlay filesystems). */
  readonly pollMs?: number;
}

export type CheckResult = 'unchanged' | 'applied' | 'failed' | 'invalid';

export class ConfigWatch {
  readonly #d: ConfigWatchDeps;
  readonly #file: string;
  #watcher: FSWatcher | undefined;
  #debounce: TimerHandle | undefined;
  #poll: TimerHandle | undefined;
  #lastHash: string | undefined;
  #running: Promise<CheckResult> | undefined;
  #again = false;
  #closed = false;

  constructor(deps: ConfigWatchDeps) {
    this.#d = deps;
    this.#file = resolve(deps.file);
  }

  /** Remembers the file as it is now (what the server started with) and starts watching. Idempotent. */
  start(): void {
    if (this.#watcher !== undefined || this.#closed) return;
    this.#lastHash = this.#hash();
    this.#watcher = watch(dirname(this.#file), { persistent: false }, () => this.#schedule());
    this.#watcher.on('error', (err) => this.#d.logger.warn({ err }, `config watch: ${err.message}`));
    this.#schedulePoll();
  }

  /** Reads the file now; one check at a time, and a change seen during a check is checked again after it. */
  check(): Promise<CheckResult> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#check().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#closed) {
        this.#again = false;
        void this.check();
      }
    });
    return this.#running;
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#debounce !== undefined) this.#d.clock.clearTimer(this.#debounce);
    if (this.#poll !== undefined) this.#d.clock.clearTimer(this.#poll);
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#debounce !== undefined) this.#d.clock.clearTimer(this.#debounce);
    this.#debounce = this.#d.clock.setTimer(() => {
      this.#debounce = undefined;
      void this.check();
    }, this.#d.debounceMs ?? 250);
  }

  #schedulePoll(): void {
    const every = this.#d.pollMs ?? 10_000;
    if (every <= 0 || this.#closed) return;
    this.#poll = this.#d.clock.setTimer(() => {
      void this.check().finally(() => this.#schedulePoll());
    }, every);
  }

  async #check(): Promise<CheckResult> {
    const { logger, metrics } = this.#d;
    const hash = this.#hash();
    // A file mid-swap (absent for a moment) is read again at the next event or poll.
    if (hash === undefined || hash === this.#lastHash) return 'unchanged';
    this.#lastHash = hash;
    let config: Readonly<Config>;
    try {
      config = loadConfigFile(this.#file, this.#d.env);
    } catch (err) {
      metrics.configReloads.labels('invalid').inc();
      logger.error(
        { file: this.#file, err: (err as Error).message },
        `config watch: ${this.#file} changed but is invalid; still serving the running config: ${(err as Error).message}`,
      );
      return 'invalid';
    }
    try {
      const report = await this.#d.apply(config);
      const result = report.ok ? 'applied' : 'failed';
      metrics.configReloads.labels(result).inc();
      const failed = report.steps.filter((s) => !s.ok).map((s) => `${s.text}: ${s.code}: ${s.error}`);
      logger[report.ok ? 'info' : 'warn'](
        { file: this.#file, plan: report.plan.map(describeStep), failed },
        `config watch: ${this.#file} changed: ${report.plan.length} step(s), ${failed.length} failed`,
      );
      return result;
    } catch (err) {
      metrics.configReloads.labels('failed').inc();
      logger.warn(
        { file: this.#file, err: (err as Error).message },
        `config watch: apply failed: ${(err as Error).message}`,
      );
      // Not remembered as seen: the next event or poll tries it again (another apply may have been running).
      this.#lastHash = undefined;
      return 'failed';
    }
  }

  #hash(): string | undefined {
    try {
      return createHash('sha256').update(readFileSync(this.#file)).digest('hex');
    } catch {
      return undefined;
    }
  }
}
