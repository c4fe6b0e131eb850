// The one seeded PRNG and its samplers: the simulator, the bench schedules and the fuzz test draw from it, so a seed
// reproduces the same run on every machine and every caller draws the same stream.

/** mulberry32: 32-bit state, uniform in [0, 1). Good enough for load and simulation; not for cryptography. */
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

/** A standard normal variate by Box-Muller; draws two uniforms, the radius first. */
export function standardNormal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}
