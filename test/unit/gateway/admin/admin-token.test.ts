// Who may call the admin API without a configured token: loopback listeners and Host headers, and the token a
// server reachable from other hosts generates for itself.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { authorize } from '../../../../gateway/admin/admin.js';
import {
  ADMIN_TOKEN_FILE,
  isLoopbackHost,
  isLoopbackHostHeader,
  resolveAdminToken,
} from '../../../../gateway/admin/admin-token.js';
import { tempDir } from '../../../helpers.js';

describe('admin token', () => {
  test('loopback listen addresses', () => {
    const cases: [string, boolean][] = [
      ['127.0.0.1', true],
      ['127.0.0.2', true],
      ['localhost', true],
      ['::1', true],
      ['0.0.0.0', false],
      ['::', false],
      ['10.0.0.5', false],
      ['127.example.com', false],
    ];
    for (const [host, want] of cases) assert.equal(isLoopbackHost(host), want, host);
  });

  test('loopback Host headers, with and without a port', () => {
    const cases: [string | undefined, boolean][] = [
      [undefined, true],
      ['localhost:8000', true],
      ['LOCALHOST', true],
      ['127.0.0.1:8000', true],
      ['[::1]:8000', true],
      ['[::1]', true],
      ['attacker.example:8000', false],
      ['localhost.attacker.example', false],
      ['[2001:db8::1]:80', false],
      ['[::1', false],
    ];
    for (const [header, want] of cases) assert.equal(isLoopbackHostHeader(header), want, String(header));
  });

  test('a configured token is kept; a loopback listener needs none; any other gets a private file', () => {
    const dir = tempDir();
    assert.deepEqual(resolveAdminToken('given-token', '0.0.0.0', dir), { token: 'given-token' });
    assert.deepEqual(resolveAdminToken(undefined, '127.0.0.1', dir), { token: undefined });
    const made = resolveAdminToken(undefined, '0.0.0.0', join(dir, 'sub'));
    assert.equal(made.generatedFile, join(dir, 'sub', ADMIN_TOKEN_FILE));
    assert.match(made.token ?? '', /^[0-9a-f]{48}$/);
    assert.equal(readFileSync(made.generatedFile ?? '', 'utf8').trim(), made.token);
    assert.equal(statSync(made.generatedFile ?? '').mode & 0o777, 0o600, 'readable by its user only');
    assert.notEqual(resolveAdminToken(undefined, '0.0.0.0', dir).token, made.token, 'a new one per start');
  });

  test('a directory that cannot be written closes the admin API instead of failing the start', () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    const r = resolveAdminToken(undefined, '0.0.0.0', join(file, 'under-a-file'));
    assert.equal(r.generatedFile, undefined);
    assert.match(r.unwritable ?? '', /under-a-file/);
    assert.match(r.token ?? '', /^[0-9a-f]{48}$/, 'a token nobody knows: every admin request is refused');
  });

  test('without a token: loopback peers naming a loopback Host pass; other peers or Hosts get 403', () => {
    const req = (remoteAddress: string, host?: string) =>
      ({ socket: { remoteAddress }, headers: host === undefined ? {} : { host } }) as Parameters<typeof authorize>[0];
    assert.equal(authorize(req('127.0.0.1', 'localhost:8000'), undefined), undefined);
    assert.equal(authorize(req('::1', '[::1]:8000'), undefined), undefined);
    assert.equal(authorize(req('10.1.2.3', 'localhost'), undefined)?.code, 'SLOGATE_ERR_FORBIDDEN');
    const rebound = authorize(req('127.0.0.1', 'attacker.example:8000'), undefined);
    assert.equal(rebound?.code, 'SLOGATE_ERR_FORBIDDEN', 'a DNS-rebound browser names the attacker host');
    assert.match(rebound?.message ?? '', /Host/);
  });

  test('with a token, the Host does not matter but the token does', () => {
    const req = (authorization?: string) =>
      ({
        socket: { remoteAddress: '10.1.2.3' },
        headers: { host: 'gw.example', ...(authorization === undefined ? {} : { authorization }) },
      }) as Parameters<typeof authorize>[0];
    assert.equal(authorize(req('Bearer s3cret-token'), 's3cret-token'), undefined);
    assert.equal(authorize(req(), 's3cret-token')?.code, 'SLOGATE_ERR_UNAUTHORIZED');
    assert.equal(authorize(req('Bearer wrong-token!'), 's3cret-token')?.code, 'SLOGATE_ERR_FORBIDDEN');
  });
});
