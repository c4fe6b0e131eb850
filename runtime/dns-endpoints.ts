// Runtime nodes named by DNS: a name resolves to endpoints (host, port), from A/AAAA records with a configured port,
// or from SRV records when a port name is given (a Kubernetes headless Service answers both). An authoritative "no
// such name" is an empty set; any other failure (timeout, refused, server failure) is an error, so callers keep what
// they had instead of draining every node on a DNS blip.
import { Resolver } from 'node:dns/promises';

export interface DnsTarget {
  /** The name to resolve, e.g. slogate-runtime.<ns>.svc.cluster.local. */
  readonly name: string;
  /** The port every address serves on (A/AAAA lookups). */
  readonly port?: number | undefined;
  /** A named port: SRV records of _<portName>._tcp.<name> give each endpoint's host and port. */
  readonly portName?: string | undefined;
  /** host:port of the DNS server to ask instead of the system's. */
  readonly resolver?: string | undefined;
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** DNS answers meaning "there is nothing under this name". */
const EMPTY_ANSWERS = new Set(['ENOTFOUND', 'ENODATA']);

export function endpointKey(e: Endpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** A resolver with short timeouts: discovery re-resolves on an interval, so one slow answer must not stall it. */
export function makeResolver(server: string | undefined, timeoutMs = 1000): Resolver {
  const r = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (server !== undefined) r.setServers([server]);
  return r;
}

/** The endpoints the name has now, sorted and without duplicates. */
export async function resolveEndpoints(target: DnsTarget, resolver: Resolver): Promise<Endpoint[]> {
  const found =
    target.portName !== undefined
      ? await viaSrv(target.name, target.portName, resolver)
      : await viaAddresses(target.name, target.port ?? 80, resolver);
  const unique = new Map(found.map((e) => [endpointKey(e), e]));
  return [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

async function viaAddresses(name: string, port: number, resolver: Resolver): Promise<Endpoint[]> {
  const [v4, v6] = await Promise.all([orEmpty(resolver.resolve4(name)), orEmpty(resolver.resolve6(name))]);
  return [...v4, ...v6].map((host) => ({ host, port }));
}

async function viaSrv(name: string, portName: string, resolver: Resolver): Promise<Endpoint[]> {
  const records = await orEmpty(resolver.resolveSrv(`_${portName}._tcp.${name}`));
  const out: Endpoint[] = [];
  for (const r of records) {
    const hosts = await viaAddresses(r.name, r.port, resolver);
    out.push(...hosts);
  }
  return out;
}

async function orEmpty<T>(p: Promise<T[]>): Promise<T[]> {
  try {
    return await p;
  } catch (err) {
    if (EMPTY_ANSWERS.has((err as { code?: string }).code ?? '')) return [];
    throw err;
  }
}

/** What changed between two resolutions. */
export function diffEndpoints(
  before: readonly Endpoint[],
  after: readonly Endpoint[],
): { added: Endpoint[]; removed: Endpoint[] } {
  const was = new Set(before.map(endpointKey));
  const now = new Set(after.map(endpointKey));
  return {
    added: after.filter((e) => !was.has(endpointKey(e))),
    removed: before.filter((e) => !now.has(endpointKey(e))),
  };
}
