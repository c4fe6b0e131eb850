// kill -9 while the model store writes leaves the old state or the new one, never a mix: a child process activates
// revisions in a loop and is killed at random moments; the store must open every time with a known active revision.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { ModelStore, revisionOf } from '../../runtime/model-store.js';
import { ROOT, tempDir } from '../helpers.js';

const CHILD = `
import { ModelStore } from ${JSON.stringify(`${ROOT}/dist/runtime/model-store.js`)};
const dir = process.argv[1];
const who = { who: 'crash-test', why: 'loop' };
const store = ModelStore.open(dir, { keepRevisions: 3, maxFileBytes: 1 << 20 });
process.stdout.write('ready\\n');
for (let i = 0; ; i++) {
  const { revision, unchanged } = store.add('m', 'v', new Uint8Array(4096).fill(i % 7), 'upload', who);
  if (!unchanged) store.activate('m', 'v', revision, who);
}
`;

test('kill -9 during writes never leaves a half-written store', async () => {
  const dir = tempDir();
  const known = new Set(Array.from({ length: 7 }, (_, i) => revisionOf(new Uint8Array(4096).fill(i))));
  for (let round = 0; round < 10; round++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await once(child.stdout, 'data');
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 40));
    child.kill('SIGKILL');
    await once(child, 'exit');
    const store = ModelStore.open(dir, { keepRevisions: 3, maxFileBytes: 1 << 20 });
    const active = store.activeRevision('m', 'v');
    if (active !== undefined) assert.ok(known.has(active), `round ${round}: active ${active} is one that was written`);
    const revisions = store.describe('m', 'v').revisions;
    assert.ok(
      revisions.length <= 4,
      `round ${round}: ${revisions.length} revisions kept, at most 3 besides the active`,
    );
    for (const r of revisions) assert.ok(existsSync(store.fileOf(r.revision)), `round ${round}: ${r.revision}'s file`);
  }
});
