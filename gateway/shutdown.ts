// Closing the HTTP side without resetting clients, in bounded time: stop listening but keep answering on open
// connections (each answer closing its connection) for a grace, then close idle keep-alive sockets, then cut
// whatever is still open after a short wait.
import { Server as NetServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../core/clock.js';

/** How long each step after the drain and the grace may take before shutdown goes on without it. */
export const SHUTDOWN_WAIT_MS = {
  /** Connections still busy after the grace (an unfinished upload, a response being written), then cut. */
  connections: 1000,
  /** Replicas finishing their running batch; a hung one is left to the process exit. */
  runtime: 2000,
  /** The tracing exporter's last flush. */
  tracing: 1000,
} as const;

/**
 * The hard upper bound of a shutdown, from the signal to the exit: the drain and the grace run side by side, every
 * step after them is bounded in turn.
 */
export function shutdownBoundMs(server: { readonly drainTimeoutMs: number; readonly shutdownGraceMs: number }): number {
  const { connections, runtime, tracing } = SHUTDOWN_WAIT_MS;
  return Math.max(server.drainTimeoutMs, server.shutdownGraceMs) + connections + runtime + tracing;
}

/** Resolves true when `work` settles within `ms`, false otherwise (the work goes on, unawaited). */
export function within(work: Promise<unknown>, ms: number, clock: Clock): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = clock.setTimer(() => resolve(false), ms);
    const done = () => {
      clock.clearTimer(timer);
      resolve(true);
    };
    work.then(done, done);
  });
}

/**
 * Stops accepting connections at once (new ones are refused by the kernel, which clients can always retry
 * elsewhere) but keeps the open ones; resolves after `graceMs`, or earlier once no connection is left.
 */
export async function stopListening(app: FastifyInstance, graceMs: number, clock: Clock): Promise<void> {
  const server = app.server;
  if (!server.listening) return;
  // 'close' comes once the listener is closed and the last connection has ended.
  const allGone = new Promise<void>((resolve) => server.once('close', () => resolve()));
  // http.Server#close would also close idle keep-alive sockets at once, racing with requests clients are already
  // sending on them; net.Server#close only stops the listener.
  NetServer.prototype.close.call(server);
  await within(allGone, graceMs, clock);
}

/**
 * After the drain and the grace: closes idle sockets, waits a little for busy ones (an unfinished upload, a
 * response being written), then cuts them; returns how many were cut.
 */
export async function closeConnections(
  app: FastifyInstance,
  clock: Clock,
  waitMs: number = SHUTDOWN_WAIT_MS.connections,
): Promise<number> {
  // Fastify's close calls http.Server#close: idle sockets are closed, and it resolves when the last connection ends.
  const closed = app.close();
  if (await within(closed, waitMs, clock)) return 0;
  const open = await new Promise<number>((resolve) => app.server.getConnections((err, n) => resolve(err ? 0 : n)));
  app.server.closeAllConnections();
  await closed;
  return open;
}
