// Who may call the admin API when the config names no token. A loopback-only server trusts loopback callers that
// name a loopback Host (a browser tricked by DNS rebinding names the attacker's host); a server reachable from other
// hosts gets a random token, written to a file only its user can read, since a proxy or sidecar also arrives from
// loopback.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** True for a listen address or host name that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || h === '::ffff:127.0.0.1' || LOOPBACK_V4.test(h);
}

/** True when a Host header names this machine's loopback (with or without a port); no header counts as loopback. */
export function isLoopbackHostHeader(header: string | undefined): boolean {
  if (header === undefined || header === '') return true;
  if (header.startsWith('[')) {
    const end = header.indexOf(']');
    return end > 0 && isLoopbackHost(header.slice(1, end));
  }
  const colon = header.indexOf(':');
  return isLoopbackHost(colon < 0 ? header : header.slice(0, colon));
}

export interface AdminToken {
  /** The token admin requests must carry; undefined: loopback callers only. */
  readonly token: string | undefined;
  /** Where a generated token was written. */
  readonly generatedFile?: string;
  /** Why a generated token could not be written: nobody knows it, so the admin API is closed. */
  readonly unwritable?: string;
}

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The configured token; else none on a loopback listener; else a new one written to `dir`/admin-token (0600). A
 * directory that cannot be written (a read-only file system) leaves the token unknown: admin closed, serving goes on.
 */
export function resolveAdminToken(configured: string | undefined, listenHost: string, dir: string): AdminToken {
  if (configured !== undefined || isLoopbackHost(listenHost)) return { token: configured };
  const token = randomBytes(24).toString('hex');
  const file = join(dir, ADMIN_TOKEN_FILE);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  } catch (err) {
    return { token, unwritable: `${file}: ${(err as Error).message}` };
  }
  return { token, generatedFile: file };
}
