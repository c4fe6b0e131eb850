// Runs every compiled test file (dist/test/**/*.test.js) with node:test. Node 20 has no glob support in
// `node --test`, so the files are listed here. Extra arguments are passed on (e.g. a path filter:
// `node test/run.mjs unit/`). Unit tests (pure logic: no servers, workers or sockets) share one process, since
// starting a process per file costs more than the tests; integration and e2e files keep a process each.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = new URL('../dist/test/', import.meta.url).pathname;
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const selected = readdirSync(root, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  .sort();
if (selected.length === 0) {
  console.error(`no test files under ${relative(process.cwd(), root)} match ${filters.join(' ')}`);
  process.exit(1);
}
const unit = selected.filter((f) => f.startsWith('unit/'));
const rest = selected.filter((f) => !unit.includes(f)).map((f) => join(root, f));
const tmp = mkdtempSync(join(tmpdir(), 'slogate-tests-'));
try {
  const files = [...rest];
  if (unit.length > 0) {
    const entry = join(tmp, 'unit.test.mjs');
    const imports = unit.map((f) => `await import(${JSON.stringify(pathToFileURL(join(root, f)).href)});\n`);
    writeFileSync(entry, imports.join(''));
    files.unshift(entry);
  }
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...flags, ...files], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
