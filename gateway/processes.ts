// `slogate serve --processes N`: one host, N gateway processes sharing the listening port (node:cluster: the primary
// accepts and hands connections round-robin), over one runtime node process on loopback that every gateway process
// reaches as a remote node, reading its load reports, as gateways on several hosts share nodes. The primary only
// supervises: it starts the node, forks the gateways, replaces one that dies, and stops them all on a signal.
import { type ChildProcess, spawn } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import type { Config } from '../core/config.js';
import { SlogateError } from '../core/errors.js';

/** The environment a gateway process reads: the node's URL and its slots. */
export const NODE_URL_ENV = 'SLOGATE_PROCESS_NODE_URL';
export const NODE_SLOTS_ENV = 'SLOGATE_PROCESS_NODE_SLOTS';

/** `auto`: one gateway process per two cores (the rest run the node's workers), at least 1. */
export function resolveProcesses(value: string, cores = availableParallelism()): number {
  if (value === 'auto') return Math.max(1, Math.floor(cores / 2));
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new SlogateError('SLOGATE_ERR_CONFIG', `--processes must be auto or an integer 1-256, got ${value}`);
  return n;
}

/** A gateway process's config: no local workers; the shared node first, then any nodes the config lists. */
export function gatewayProcessConfig(config: Readonly<Config>, nodeUrl: string, slots: number): Config {
  const c = structuredClone(config) as Config;
  c.runtime.workers = 0;
  c.runtime.replicas = [{ url: nodeUrl, concurrency: slots }, ...c.runtime.replicas];
  return c;
}

export interface Supervisor {
  /** Stops the gateway processes (each drains), then the node. */
  stop(): Promise<void>;
}

/**
 * Starts the node (`slogate runtime` on 127.0.0.1, a free port) and forks `processes` gateway processes running this
 * same CLI with `serveArgs`, the first alone, then the rest; resolves once every gateway listens, with the address
 * they share.
 */
export async function superviseProcesses(options: {
  readonly cli: string;
  readonly configFile: string;
  readonly serveArgs: readonly string[];
  readonly processes: number;
  readonly nodeSlots: number;
  readonly log: (line: string) => void;
}): Promise<{ address: string; supervisor: Supervisor }> {
  const node = await startNode(options.cli, options.configFile);
  let stopping = false;
  cluster.setupPrimary({ exec: options.cli, args: ['serve', ...options.serveArgs], silent: false });
  const env = { [NODE_URL_ENV]: node.url, [NODE_SLOTS_ENV]: String(options.nodeSlots) };
  const fork = (): Worker => cluster.fork(env);
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    options.log(`gateway process ${w.process.pid} exited (${signal ?? code}): starting another`);
    setTimeout(() => !stopping && fork(), 1000).unref();
  });
  const listen = (): Promise<[{ address: string; port: number }]> =>
    once(fork(), 'listening') as Promise<[{ address: string; port: number }]>;
  // The first process measures the latency profiles through the node and caches them; the others, started once it
  // listens, read that cache instead of all sweeping the shared node at once (and measuring each other's batches).
  const [first] = await listen();
  await Promise.all(Array.from({ length: options.processes - 1 }, listen));
  const host = first.address.includes(':') ? `[${first.address}]` : first.address;
  return {
    address: `http://${host}:${first.port}`,
    supervisor: {
      stop: async () => {
        stopping = true;
        const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
        await Promise.all(workers.map((w) => stopProcess(w.process)));
        await stopProcess(node.child);
      },
    },
  };
}

/** SIGTERM (the process drains), SIGKILL after `graceMs`; resolves once it has exited. */
async function stopProcess(child: ChildProcess, graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Spawns the runtime node (with an IPC channel: it stops when this process goes) and waits for its ready line. */
async function startNode(cli: string, configFile: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    // With this process's V8 flags (its GC mode among them), as node:cluster starts the gateway processes.
    [...process.execArgv, cli, 'runtime', '--config', configFile, '--host', '127.0.0.1', '--port', '0'],
    {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    },
  );
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = out.match(/ready: (http:\/\/127\.0\.0\.1:\d+)/);
      if (m === null) return;
      child.stdout?.off('data', onData);
      child.stdout?.resume();
      resolve({ url: m[1] as string, child });
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) =>
      reject(new SlogateError('SLOGATE_ERR_MODEL_LOAD', `the runtime node exited with ${code} before it was ready`)),
    );
  });
}
