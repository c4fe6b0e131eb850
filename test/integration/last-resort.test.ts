// The process-level last resort, in a real child process with a real pino logger: an unhandled rejection is logged
// and the process goes on; an uncaught exception is logged (the line reaches stdout) before the exit with status 1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from '../helpers.js';

const SCRIPT = `
import { pino } from 'pino';
import { installLastResort } from './dist/core/last-resort.js';
const logger = pino({ level: 'info' });
installLastResort({ logger });
Promise.reject(new Error('a forgotten catch'));
setTimeout(() => logger.info('still serving'), 20);
setTimeout(() => { throw new Error('boom'); }, 40);
setTimeout(() => logger.info('never reached'), 2000);
`;

test('an unhandled rejection is logged and serving goes on; an uncaught exception is logged, then exit 1', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 10_000,
  });
  const lines = r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { msg: string; err?: { message: string } });
  assert.deepEqual(
    lines.map((l) => l.msg),
    [
      'unhandled promise rejection (a bug); serving goes on',
      'still serving',
      'uncaught exception (a bug); exiting with status 1',
    ],
    r.stderr,
  );
  assert.equal(lines[0]?.err?.message, 'a forgotten catch');
  assert.equal(lines[2]?.err?.message, 'boom');
  assert.equal(r.status, 1);
});
