// What an inference request holds until its answer's connection closes: its reserved body bytes, and, while its work
// runs, the cancellation of that work if the client leaves first. One 'close' listener serves both, because every
// listener costs an EventEmitter add and remove per request.
import type { ClientGone } from '../../core/cancel.js';
import type { BodyBudget } from './body-limits.js';

/** What closes with the request: node:http's response, or an exchange read off a socket (direct-sockets.ts). */
export interface Closing {
  on(event: 'close', listener: () => void): unknown;
  /** Its answer has been written in full. */
  readonly writableEnded: boolean;
}

export class RequestHold {
  readonly #raw: Closing;
  readonly #budget: BodyBudget | undefined;
  readonly #bytes: number;
  #gone: ClientGone | undefined;

  /** Releases `bytes` of `budget` when `raw` closes (none held: budget undefined). */
  constructor(raw: Closing, budget: BodyBudget | undefined, bytes: number) {
    this.#raw = raw;
    this.#budget = budget;
    this.#bytes = bytes;
    raw.on('close', () => this.#closed());
  }

  /** While set, a close before the answer has ended aborts `gone`; undefined once the work is done. */
  watch(gone: ClientGone | undefined): void {
    this.#gone = gone;
  }

  #closed(): void {
    this.#budget?.release(this.#bytes);
    const gone = this.#gone;
    this.#gone = undefined;
    if (gone !== undefined && !this.#raw.writableEnded) gone.abort();
  }
}

/** The request decoration that carries the hold from the body's admission to the handler. */
export interface HoldingRequest {
  hold: RequestHold | null;
}
