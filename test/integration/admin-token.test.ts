// A server configured to listen beyond loopback without an admin token generates one: loopback callers (a proxy, a
// sidecar, a port-forward) no longer pass on their address alone.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { ADMIN_TOKEN_FILE } from '../../gateway/admin/admin-token.js';
import { createSlogate, type Slogate } from '../../main.js';
import { digitsConfig, tempDir } from '../helpers.js';

describe('admin token generated for a non-loopback listener', () => {
  const dir = tempDir();
  let sg: Slogate;
  before(async () => {
    sg = await createSlogate({
      // Never listens: inject() only. The token file goes to the profile cache directory.
      config: digitsConfig({
        server: { host: '0.0.0.0', port: 0, logLevel: 'silent', warmup: { requests: 0 } },
        runtime: { workers: 1, profile: { enabled: false, cacheDir: dir } },
      }),
      logger: pino({ level: 'silent' }),
      defaultMetrics: false,
    });
  });
  after(async () => {
    await sg.close();
  });

  test('loopback without the token gets 401; the token from the file gets 200', async () => {
    const bare = await sg.app.inject({ url: '/admin/routes', remoteAddress: '127.0.0.1' });
    assert.equal(bare.statusCode, 401);
    assert.equal(bare.headers['x-slogate-error-code'], 'SLOGATE_ERR_UNAUTHORIZED');
    const token = readFileSync(join(dir, ADMIN_TOKEN_FILE), 'utf8').trim();
    const ok = await sg.app.inject({ url: '/admin/routes', headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.statusCode, 200);
  });
});
