// Resolving runtime nodes against a real DNS server on loopback (dnsmasq): A records with a configured port, SRV
// records for a named port, records that change while the resolver is in use, and what counts as "no nodes" versus
// "DNS is failing".
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeResolver, resolveEndpoints } from '../../runtime/dns-endpoints.js';
import { DNSMASQ, DnsServer } from '../support/dns-server.js';

describe('dns endpoints against dnsmasq', {
  skip: DNSMASQ === undefined && !process.env.CI ? 'no dnsmasq' : false,
}, () => {
  const dns = new DnsServer();
  before(async () => {
    await dns.start({ 'runtime.test': ['127.0.0.2', '127.0.0.3'], 'node-a.test': ['127.0.0.4'] }, [
      { service: '_http._tcp.runtime.test', target: 'node-a.test', port: 9001 },
    ]);
  });
  after(async () => {
    await dns.close();
  });

  test('A records give one endpoint per address on the configured port', async () => {
    const got = await resolveEndpoints({ name: 'runtime.test', port: 8000 }, makeResolver(dns.address));
    assert.deepEqual(got, [
      { host: '127.0.0.2', port: 8000 },
      { host: '127.0.0.3', port: 8000 },
    ]);
  });

  test('a named port reads SRV records: their targets and ports', async () => {
    const got = await resolveEndpoints({ name: 'runtime.test', portName: 'http' }, makeResolver(dns.address));
    assert.deepEqual(got, [{ host: '127.0.0.4', port: 9001 }]);
  });

  test('records changed on the server are seen on the next resolution', async () => {
    const resolver = makeResolver(dns.address);
    await dns.setHosts({ 'runtime.test': ['127.0.0.2', '127.0.0.3', '127.0.0.5'], 'node-a.test': ['127.0.0.4'] });
    const grown = await resolveEndpoints({ name: 'runtime.test', port: 8000 }, resolver);
    assert.deepEqual(
      grown.map((e) => e.host),
      ['127.0.0.2', '127.0.0.3', '127.0.0.5'],
    );
    await dns.setHosts({ 'runtime.test': ['127.0.0.3'], 'node-a.test': ['127.0.0.4'] });
    const shrunk = await resolveEndpoints({ name: 'runtime.test', port: 8000 }, resolver);
    assert.deepEqual(
      shrunk.map((e) => e.host),
      ['127.0.0.3'],
    );
  });

  test('a name with no records is an empty set; an unreachable server is an error', async () => {
    assert.deepEqual(await resolveEndpoints({ name: 'gone.test', port: 8000 }, makeResolver(dns.address)), []);
    const silent = new DnsServer();
    await silent.start({});
    const address = silent.address;
    await silent.close();
    await assert.rejects(
      resolveEndpoints({ name: 'runtime.test', port: 8000 }, makeResolver(address, 100)),
      (e: Error & { code?: string }) => e.code !== 'ENOTFOUND' && e.code !== 'ENODATA',
    );
  });
});
