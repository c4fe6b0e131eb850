// The main heap's allocation and collections over a window, from V8's space sizes around each collection
// (node:v8 GCProfiler): what bench/cpu-probe.ts reports per request.

/** The main thread's heap over the window (worker threads have heaps of their own, not counted). */
export interface HeapReport {
  /** Bytes allocated by the program (new space, and objects V8 placed straight in the old spaces). */
  readonly allocatedBytes: number;
  /** Bytes that entered the old generation: promoted by scavenges, or allocated there (pretenured, large). */
  readonly oldGenerationBytes: number;
  readonly scavenges: number;
  /** Full collections (mark-compact). */
  readonly markCompacts: number;
  /** Main-thread time in collections. */
  readonly pauseMs: number;
}

export type SpaceSizes = Map<string, number>;

const NEW_SPACES = new Set(['new_space', 'new_large_object_space']);

export function spaceSizes(
  list: readonly { space_name?: string; spaceName?: string; space_used_size?: number; spaceUsedSize?: number }[],
): SpaceSizes {
  return new Map(list.map((s) => [s.space_name ?? s.spaceName ?? '', s.space_used_size ?? s.spaceUsedSize ?? 0]));
}

/** Growth of each kind of space from `a` to `b`, added into `into`. */
function addGrowth(into: { young: number; old: number }, a: SpaceSizes, b: SpaceSizes): void {
  for (const [name, size] of b) {
    if (name === 'read_only_space') continue;
    const d = size - (a.get(name) ?? 0);
    if (NEW_SPACES.has(name)) into.young += d;
    else into.old += d;
  }
}

export interface GcRecord {
  readonly gcType: string;
  readonly cost: number;
  readonly beforeGC: { readonly heapSpaceStatistics: readonly { spaceName: string; spaceUsedSize: number }[] };
  readonly afterGC: { readonly heapSpaceStatistics: readonly { spaceName: string; spaceUsedSize: number }[] };
}

/**
 * Allocation and promotion from the space sizes around each collection: between collections the program allocates
 * (young growth, plus old growth for pretenured and large objects); a scavenge moves survivors from young to old.
 */
export function heapReport(start: SpaceSizes, end: SpaceSizes, gcs: readonly GcRecord[]): HeapReport {
  const mutator = { young: 0, old: 0 };
  let promoted = 0;
  let scavenges = 0;
  let markCompacts = 0;
  let pauseUs = 0;
  let last = start;
  for (const gc of gcs) {
    const before = spaceSizes(gc.beforeGC.heapSpaceStatistics);
    const after = spaceSizes(gc.afterGC.heapSpaceStatistics);
    addGrowth(mutator, last, before);
    pauseUs += gc.cost;
    if (gc.gcType === 'Scavenge' || gc.gcType === 'MinorMarkSweep') {
      scavenges++;
      const moved = { young: 0, old: 0 };
      addGrowth(moved, before, after);
      promoted += Math.max(0, moved.old);
    } else if (gc.gcType === 'MarkSweepCompact') markCompacts++;
    last = after;
  }
  addGrowth(mutator, last, end);
  return {
    allocatedBytes: Math.max(0, mutator.young) + Math.max(0, mutator.old),
    oldGenerationBytes: promoted + Math.max(0, mutator.old),
    scavenges,
    markCompacts,
    pauseMs: pauseUs / 1000,
  };
}
