// The Server-Timing header of an inference answer: its time queued, in the model, and in all (ms, three decimals).

/** `queue;dur=…, infer;dur=…, total;dur=…`, with `, best-effort` for an answer that could never meet its deadline. */
export function serverTiming(queueMs: number, inferMs: number, totalMs: number, bestEffort: boolean): string {
  const timing = `queue;dur=${millis(queueMs)}, infer;dur=${millis(inferMs)}, total;dur=${millis(totalMs)}`;
  return bestEffort ? `${timing}, best-effort` : timing;
}

/**
 * `ms` with three decimals, as toFixed(3) writes it (a halfway case may round the other way), from integers: every
 * answer formats three of these, and toFixed costs about twice as much.
 */
export function millis(ms: number): string {
  if (!(ms >= 0 && ms < 1e9)) return ms.toFixed(3);
  const k = Math.round(ms * 1000);
  const whole = Math.floor(k / 1000);
  const frac = k - whole * 1000;
  return `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}
