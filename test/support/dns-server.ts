// A real DNS server on loopback for discovery tests: dnsmasq (Debian's dnsmasq-base, installed by .ci/run) answering
// for names under .test from a hosts file the test rewrites (re-read on SIGHUP) and SRV records (set on restart).
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeResolver } from '../../runtime/dns-endpoints.js';
import { tempDir } from '../helpers.js';

export const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'].find((p) => existsSync(p));

export interface SrvRecord {
  readonly service: string;
  readonly target: string;
  readonly port: number;
}

export class DnsServer {
  readonly #dir = tempDir('slogate-dns-');
  readonly #hostsFile = join(this.#dir, 'hosts');
  #child: ChildProcess | undefined;
  #srv: readonly SrvRecord[] = [];
  port = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts dnsmasq on a free loopback port with these A records (name -> addresses) and SRV records. */
  async start(hosts: Record<string, string[]>, srv: readonly SrvRecord[] = []): Promise<this> {
    if (DNSMASQ === undefined) throw new Error('dnsmasq is not installed (apt-get install dnsmasq-base)');
    this.#srv = srv;
    this.#writeHosts(hosts);
    // A port free for UDP may be taken for TCP, which dnsmasq also binds: another free port is tried.
    for (let attempt = 1; ; attempt++) {
      this.port = await freeUdpPort();
      try {
        await this.#spawn();
        return this;
      } catch (err) {
        if (attempt >= 5 || !/Address already in use/.test(String(err))) throw err;
      }
    }
  }

  /** Replaces the A records; dnsmasq re-reads them on SIGHUP. Resolves once the server answers with them. */
  async setHosts(hosts: Record<string, string[]>): Promise<void> {
    this.#writeHosts(hosts);
    this.#child?.kill('SIGHUP');
    await this.#waitForAnswer(hosts);
  }

  /** SRV records are configuration to dnsmasq: changing them restarts it on the same port. */
  async setSrv(srv: readonly SrvRecord[]): Promise<void> {
    await this.close();
    this.#srv = srv;
    await this.#spawn();
  }

  async close(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  }

  #writeHosts(hosts: Record<string, string[]>): void {
    const lines = Object.entries(hosts).flatMap(([name, addrs]) => addrs.map((a) => `${a} ${name}`));
    writeFileSync(this.#hostsFile, `${lines.join('\n')}\n`);
  }

  async #spawn(): Promise<void> {
    const args = [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      `--port=${this.port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--local=/test/',
      '--user=root',
      `--pid-file=${join(this.#dir, 'pid')}`,
      `--addn-hosts=${this.#hostsFile}`,
      ...this.#srv.map((s) => `--srv-host=${s.service},${s.target},${s.port}`),
    ];
    const child = spawn(DNSMASQ as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = once(child, 'exit').then(() => {
      throw new Error(`dnsmasq exited: ${stderr.trim()}`);
    });
    await Promise.race([this.#waitForAnswer(undefined), exited]);
  }

  /** Polls until the server answers (and, if given, with these hosts' first addresses). */
  async #waitForAnswer(hosts: Record<string, string[]> | undefined): Promise<void> {
    const resolver = makeResolver(this.address, 200);
    const probe = Object.entries(hosts ?? {}).find(([, a]) => a.length > 0);
    for (let i = 0; i < 100; i++) {
      try {
        const got = await resolver.resolve4(probe?.[0] ?? 'probe.test');
        if (probe === undefined || got.includes(probe[1][0] as string)) return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (probe === undefined && (code === 'ENOTFOUND' || code === 'ENODATA')) return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`dnsmasq on ${this.address} did not answer`);
  }
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  return port;
}
