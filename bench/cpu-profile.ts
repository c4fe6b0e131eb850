// Reading a V8 CPU profile (.cpuprofile): self time per function, largest first.

export interface CpuProfile {
  readonly nodes: readonly {
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly hitCount?: number;
  }[];
  /** Microseconds. */
  readonly startTime: number;
  readonly endTime: number;
}

export interface SelfTime {
  /** Function name and where it is defined (package-relative for dependencies, root-relative for the project). */
  readonly name: string;
  /** Share of all samples (idle and GC included). */
  readonly share: number;
  readonly ms: number;
}

/** Self time per function (same name and place merged), the `n` largest. */
export function topSelfTime(profile: CpuProfile, n: number, root = ''): SelfTime[] {
  let total = 0;
  const by = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    total += hits;
    const f = node.callFrame;
    let where = '';
    if (f.url !== '') {
      const path = f.url.replace(/^file:\/\//, '');
      const dep = path.lastIndexOf('/node_modules/');
      const short =
        dep >= 0 ? path.slice(dep + 14) : root !== '' && path.startsWith(root) ? path.slice(root.length) : path;
      where = ` ${short}:${f.lineNumber + 1}`;
    }
    const name = `${f.functionName === '' ? '(anonymous)' : f.functionName}${where}`;
    by.set(name, (by.get(name) ?? 0) + hits);
  }
  const ms = (profile.endTime - profile.startTime) / 1000;
  return [...by.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, hits]) => ({ name, share: hits / Math.max(1, total), ms: (hits / Math.max(1, total)) * ms }));
}
