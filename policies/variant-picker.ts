// Spreads a route's requests over a mix of variants by their shares with smooth weighted round-robin (as nginx
// does): deterministic, no randomness, and the mix holds over any short window, not just on average.
import type { VariantShare } from '../core/decision.js';

export class VariantPicker {
  #shares: readonly VariantShare[] = [];
  #current: number[] = [];

  /** Replaces the mix; keeps the running credit of variants that stay, so a small change causes no burst. */
  set(shares: readonly VariantShare[]): void {
    const prev = new Map(this.#shares.map((s, i) => [s.variant, this.#current[i] ?? 0]));
    this.#shares = shares.filter((s) => s.share > 0);
    this.#current = this.#shares.map((s) => prev.get(s.variant) ?? 0);
  }

  get shares(): readonly VariantShare[] {
    return this.#shares;
  }

  pick(): string | undefined {
    const s = this.#shares;
    if (s.length === 0) return undefined;
    if (s.length === 1) return (s[0] as VariantShare).variant;
    let total = 0;
    let best = 0;
    for (let i = 0; i < s.length; i++) {
      const w = (s[i] as VariantShare).share;
      total += w;
      const c = (this.#current[i] as number) + w;
      this.#current[i] = c;
      if (c > (this.#current[best] as number)) best = i;
    }
    this.#current[best] = (this.#current[best] as number) - total;
    return (s[best] as VariantShare).variant;
  }
}
