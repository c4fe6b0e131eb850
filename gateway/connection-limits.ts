// What one client connection may hold, applied to the listening server: the request timeout (a whole request must
// arrive within it, or Node answers 408 and closes), the same bound on its headers, a fresh connection's inactivity
// bounded like an idle keep-alive one, and a cap on open connections (further ones closed on arrival, counted).
import type { Server } from 'node:http';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';

export interface ConnectionLimits {
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
}

/** How often Node checks request and header timeouts (its default, 30 s, would let a slow upload run 30 s over). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1000;

const DROP_LOG_INTERVAL_MS = 10_000;

export function applyConnectionLimits(
  server: Server,
  limits: ConnectionLimits,
  deps: { readonly log: Logger; readonly clock: Clock; readonly dropped: { inc(): void } },
): void {
  const { log, clock } = deps;
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = Math.min(server.headersTimeout, limits.requestTimeoutMs);
  // A connection silent before its first request costs a socket only (capped below): it may idle as long as a
  // keep-alive one, so that clients' pre-opened connections are not closed under them.
  server.setTimeout(server.keepAliveTimeout);
  server.maxConnections = limits.maxConnections;
  let dropped = 0;
  let loggedAtMs = Number.NEGATIVE_INFINITY;
  server.on('drop', () => {
    dropped++;
    deps.dropped.inc();
    if (clock.now() - loggedAtMs < DROP_LOG_INTERVAL_MS) return;
    loggedAtMs = clock.now();
    log.warn({ dropped, maxConnections: limits.maxConnections }, 'connection cap reached: new connections closed');
  });
}
