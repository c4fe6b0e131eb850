// Closed-loop load (N connections, each sending its next request when the last answer arrives) through autocannon:
// the peak-throughput view. Bounded by duration and a request cap; stops by itself.
import autocannon from 'autocannon';

export interface ClosedLoopOptions {
  readonly url: string;
  readonly path: string;
  readonly bodies: readonly { body: Buffer; headers: Record<string, string> }[];
  readonly connections: number;
  readonly durationS: number;
  readonly maxRequests?: number;
}

export interface ClosedLoopResult {
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
}

export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const r = await autocannon({
    url: o.url,
    connections: o.connections,
    duration: o.durationS,
    ...(o.maxRequests !== undefined ? { amount: o.maxRequests } : {}),
    method: 'POST',
    requests: o.bodies.map((b) => ({ method: 'POST', path: o.path, body: b.body, headers: b.headers })),
  });
  return {
    requests: r.requests.total,
    rps: r.requests.average,
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}
