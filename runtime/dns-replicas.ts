// Runtime nodes named by DNS, kept as pool members while serving: an address that appears is started (probed ready,
// its models checked) and only then added to the pool; one that disappears is drained (its running batches finish,
// nothing new goes to it). A node failing is a hint that the set changed, so it triggers a resolution.
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { DnsDiscovery } from './dns-discovery.js';
import { type DnsTarget, type Endpoint, endpointKey } from './dns-endpoints.js';
import type { Replica, ReplicaState } from './replica.js';
import type { DescribeResult } from './worker/messages.js';

/** What the set needs of the replica pool. */
export interface MemberPool {
  add(r: Replica): void;
  drain(r: Replica): Promise<void>;
  on(event: 'state', listener: (id: string, state: ReplicaState, reason: string) => void): unknown;
}

export interface DnsReplicaSetOptions {
  readonly target: DnsTarget;
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly pool: MemberPool;
  /** Builds the replica for an endpoint (a RemoteReplica in production). */
  readonly makeReplica: (endpoint: Endpoint, id: string) => Replica;
  /** Wait before starting a node again after a failed start. */
  readonly restartDelayMs?: number;
  /** Resolution, replaceable in unit tests. */
  readonly resolve?: (target: DnsTarget) => Promise<Endpoint[]>;
}

interface Member {
  readonly replica: Replica;
  joined: boolean;
  left: boolean;
  retry: TimerHandle | undefined;
}

export class DnsReplicaSet {
  readonly #o: DnsReplicaSetOptions;
  readonly #discovery: DnsDiscovery;
  readonly #members = new Map<string, Member>();
  readonly #ids = new Set<string>();
  #firstJoined: ((d: DescribeResult) => void) | undefined;
  readonly #first: Promise<DescribeResult>;
  #closed = false;

  constructor(o: DnsReplicaSetOptions) {
    this.#o = o;
    this.#first = new Promise((resolve) => {
      this.#firstJoined = resolve;
    });
    this.#discovery = new DnsDiscovery({
      target: o.target,
      clock: o.clock,
      intervalMs: o.intervalMs,
      onChange: (added, removed) => this.#onChange(added, removed),
      onError: (err) => o.logger.warn({ dns: o.target.name, err: err.message }, `resolving ${o.target.name} failed`),
      ...(o.resolve !== undefined ? { resolve: o.resolve } : {}),
    });
    o.pool.on('state', (id, state) => {
      if (state === 'down' && this.#ids.has(id)) void this.#discovery.refresh();
    });
  }

  /** Resolves once and starts the nodes found (without waiting for them); then re-resolves on the interval. */
  start(): Promise<void> {
    return this.#discovery.refresh();
  }

  /** The description of the first node that joined (a gateway without other replicas learns the models from it). */
  firstJoined(): Promise<DescribeResult> {
    return this.#first;
  }

  /** Members by endpoint: joined (in the pool) or still starting. */
  members(): { endpoint: string; id: string; joined: boolean }[] {
    return [...this.#members].map(([endpoint, m]) => ({ endpoint, id: m.replica.id, joined: m.joined }));
  }

  #onChange(added: readonly Endpoint[], removed: readonly Endpoint[]): void {
    for (const e of removed) this.#leave(endpointKey(e));
    for (const e of added) {
      const key = endpointKey(e);
      if (this.#members.has(key)) continue;
      const id = `${this.#o.target.name}/${key}`;
      const m: Member = { replica: this.#o.makeReplica(e, id), joined: false, left: false, retry: undefined };
      this.#members.set(key, m);
      this.#ids.add(id);
      this.#o.logger.info({ dns: this.#o.target.name, endpoint: key }, `runtime node ${key} appeared in DNS`);
      void this.#join(m);
    }
  }

  async #join(m: Member): Promise<void> {
    let desc: DescribeResult;
    try {
      desc = await m.replica.start();
    } catch (err) {
      if (m.left || this.#closed) return;
      this.#o.logger.warn({ replica: m.replica.id, err: (err as Error).message }, `node ${m.replica.id} did not start`);
      m.retry = this.#o.clock.setTimer(() => {
        m.retry = undefined;
        if (!m.left && !this.#closed) void this.#join(m);
      }, this.#o.restartDelayMs ?? 1000);
      return;
    }
    if (m.left || this.#closed) {
      await m.replica.close();
      return;
    }
    m.joined = true;
    this.#o.pool.add(m.replica);
    this.#firstJoined?.(desc);
    this.#firstJoined = undefined;
  }

  #leave(key: string): void {
    const m = this.#members.get(key);
    if (m === undefined) return;
    this.#members.delete(key);
    this.#ids.delete(m.replica.id);
    m.left = true;
    if (m.retry !== undefined) this.#o.clock.clearTimer(m.retry);
    this.#o.logger.info({ replica: m.replica.id }, `runtime node ${key} left DNS: draining it`);
    if (m.joined) void this.#o.pool.drain(m.replica);
    else void m.replica.close();
  }

  /** Stops resolving; members stay in the pool (the pool closes them). Nodes still starting are closed. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#discovery.close();
    const starting = [...this.#members.values()].filter((m) => !m.joined);
    for (const m of starting) if (m.retry !== undefined) this.#o.clock.clearTimer(m.retry);
    await Promise.all(starting.map((m) => m.replica.close()));
  }
}
