import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type GcRecord, heapReport, spaceSizes } from '../../../bench/heap-report.js';

const sizes = (young: number, old: number, readOnly = 0) => [
  { spaceName: 'new_space', spaceUsedSize: young },
  { spaceName: 'old_space', spaceUsedSize: old },
  { spaceName: 'read_only_space', spaceUsedSize: readOnly },
];

const gc = (gcType: string, cost: number, before: [number, number], after: [number, number]): GcRecord => ({
  gcType,
  cost,
  beforeGC: { heapSpaceStatistics: sizes(...before) },
  afterGC: { heapSpaceStatistics: sizes(...after, 7) },
});

test('allocation is the growth between collections; a scavenge moves its survivors into the old generation', () => {
  const r = heapReport(spaceSizes(sizes(100, 1000)), spaceSizes(sizes(300, 950)), [
    gc('Scavenge', 1500, [1100, 1000], [50, 1030]),
    gc('MarkSweepCompact', 4000, [500, 1200], [0, 900]),
  ]);
  // young: 100 -> 1100, 50 -> 500, 0 -> 300; old straight from the program: 1030 -> 1200, 900 -> 950
  assert.equal(r.allocatedBytes, 1750 + 220);
  // 30 promoted by the scavenge, 220 allocated there
  assert.equal(r.oldGenerationBytes, 250);
  assert.equal(r.scavenges, 1);
  assert.equal(r.markCompacts, 1);
  assert.equal(r.pauseMs, 5.5);
});

test('no collection: the window allocated what the young generation grew by', () => {
  const r = heapReport(spaceSizes(sizes(10, 500)), spaceSizes(sizes(4010, 500)), []);
  assert.deepEqual(r, { allocatedBytes: 4000, oldGenerationBytes: 0, scavenges: 0, markCompacts: 0, pauseMs: 0 });
});

test('space sizes read both V8 spellings and leave the read-only space out', () => {
  const s = spaceSizes([
    { space_name: 'new_space', space_used_size: 5 },
    { spaceName: 'old_space', spaceUsedSize: 6 },
  ]);
  assert.deepEqual(
    [...s],
    [
      ['new_space', 5],
      ['old_space', 6],
    ],
  );
  const r = heapReport(spaceSizes(sizes(0, 0, 100)), spaceSizes(sizes(0, 0, 900)), []);
  assert.equal(r.allocatedBytes, 0);
});
