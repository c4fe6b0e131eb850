import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePerfReport } from '../../../bench/perf-record.js';

const REPORT = `# Samples: 11K of event 'cpu-clock:ppp'
# Overhead  Symbol
# ........  ......
#
    13.01%  [k] pvm_irq_enable
     2.18%  [.] Builtins_LoadIC
     0.90%  [.] JS:*handler file:///repo/dist/gateway/v2/infer.js:55:21
     0.50%  [.] std::_Rb_tree<a, b>::erase

#
# (Tip: use --stdio)
`;

test('perf report rows become shares, comments and blank lines skipped, kernel and user markers dropped', () => {
  const rows = parsePerfReport(REPORT, 3);
  assert.deepEqual(
    rows.map((r) => r.name),
    ['pvm_irq_enable', 'Builtins_LoadIC', 'JS:*handler file:///repo/dist/gateway/v2/infer.js:55:21'],
  );
  assert.equal(Math.round((rows[0]?.share ?? 0) * 10_000), 1301);
  assert.equal(rows.length, 3);
});

test('rows sorted by binary have no marker', () => {
  const rows = parsePerfReport('    46.40%  node                    \n    22.20%  [kernel.kallsyms]\n', 10);
  assert.deepEqual(
    rows.map((r) => [r.name, Math.round(r.share * 10_000)]),
    [
      ['node', 4640],
      ['[kernel.kallsyms]', 2220],
    ],
  );
});
