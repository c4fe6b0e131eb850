/**
 * The k-th smallest of a[0..n) (0-based), found by quickselect: linear time on average, where a sort costs n log n.
 * Reorders a[0..n) in place; selections of several k from the same array stay correct. NaN is not supported.
 */
export function selectKth(a: Float64Array, n: number, k: number): number {
  if (!(k >= 0 && k < n && n <= a.length)) throw new RangeError(`k ${k} is outside 0..${n - 1}`);
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    // The median of three as pivot: sorted or reversed input stays linear.
    const mid = (lo + hi) >>> 1;
    const pivot = median3(a[lo] as number, a[mid] as number, a[hi] as number);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((a[i] as number) < pivot) i++;
      while ((a[j] as number) > pivot) j--;
      if (i <= j) {
        const t = a[i] as number;
        a[i] = a[j] as number;
        a[j] = t;
        i++;
        j--;
      }
    }
    // Now a[lo..j] <= pivot <= a[i..hi], and anything strictly between j and i equals the pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k] as number;
  }
  return a[k] as number;
}

function median3(x: number, y: number, z: number): number {
  return Math.max(Math.min(x, y), Math.min(Math.max(x, y), z));
}
