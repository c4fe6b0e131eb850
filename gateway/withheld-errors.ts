// The detail of the latest errors whose message clients do not get (see errors.ts), for GET /admin/errors: an
// operator holding a client's request id finds what happened without the logs. Bounded: the oldest goes first.
import { clipText } from '../core/describe-value.js';

export interface WithheldError {
  readonly at: string;
  readonly requestId: string;
  readonly code: string;
  readonly method: string;
  readonly url: string;
  readonly detail: string;
}

/** Errors kept, and characters of each detail (a stack trace is a few KB). */
export const WITHHELD_ERRORS_KEPT = 100;
export const WITHHELD_DETAIL_CHARS = 4096;

export class WithheldErrors {
  readonly #items: WithheldError[] = [];
  readonly #wallNowMs: () => number;
  /** Errors no longer kept because newer ones took their place. */
  forgotten = 0;

  constructor(wallNowMs: () => number) {
    this.#wallNowMs = wallNowMs;
  }

  record(e: Omit<WithheldError, 'at'>): void {
    this.#items.push({
      at: new Date(this.#wallNowMs()).toISOString(),
      requestId: e.requestId,
      code: e.code,
      method: e.method,
      url: clipText(e.url, 200),
      detail: clipText(e.detail, WITHHELD_DETAIL_CHARS),
    });
    if (this.#items.length > WITHHELD_ERRORS_KEPT) {
      this.#items.shift();
      this.forgotten++;
    }
  }

  /** Newest first. */
  list(): WithheldError[] {
    return [...this.#items].reverse();
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Set by buildServer; sendError records there what it keeps from the client. */
    withheldErrors?: WithheldErrors;
  }
}
