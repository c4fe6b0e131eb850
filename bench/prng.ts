// A small seeded PRNG (mulberry32) and the samplers schedules need: the same seed gives the same schedule on every
// machine, so two runs (or two policies in one compare) face exactly the same arrivals.

/** mulberry32: 32-bit state, uniform in [0, 1). Good enough for load schedules; not for cryptography. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An exponential variate with the given mean (inverse transform; 1 - u keeps log away from 0). */
export function exponential(rand: () => number, mean: number): number {
  return -Math.log(1 - rand()) * mean;
}
