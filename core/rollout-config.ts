// The rollout policy of a model (docs/lifecycle.md, "Rollouts"): how a revision that passed its gates meets live
// traffic. `immediate` switches right after the gates; a policy object runs shadow and canary phases first.
import { z } from 'zod';
import { SlogateError } from './errors.js';

export const RolloutPolicySchema = z.strictObject({
  /** Percent of the variant's batches also run on the candidate (answers compared, never returned); 0 skips shadow. */
  shadowPercent: z.number().min(0).max(100).default(5),
  shadowSeconds: z.number().min(0).max(86_400).default(60),
  /** Share of shadowed rows where the candidate's class equals the active revision's. */
  minAgreement: z.number().min(0).max(1).default(0.98),
  /** Canary share of the variant's traffic per step, percent, increasing; the last is usually 100. */
  steps: z
    .array(z.number().gt(0).max(100))
    .min(1)
    .max(20)
    .default([5, 25, 50, 100])
    .refine((s) => s.every((x, i) => i === 0 || x > (s[i - 1] as number)), 'steps must increase'),
  /** Each step (and the shadow phase) is held at least this long. */
  bakeSeconds: z.number().min(0).max(86_400).default(30),
  /**
   * Requests the candidate must have answered (or shadowed) in a step before it may advance: the p99 of fewer than
   * about 200 samples is one or two outliers, and zero errors in n requests only bounds the error rate below 3/n.
   */
  minRequests: z.number().int().min(1).max(1_000_000).default(200),
  /** Candidate error rate at most this much above the active one's. */
  maxErrorRateIncrease: z.number().min(0).max(1).default(0.001),
  /** Candidate p99 service time at most this fraction above the active one's at the same batch size. */
  maxP99Increase: z.number().min(0).max(100).default(0.2),
  /** A tail over maxP99Increase counts only when it is also this much slower (ms): scheduling noise moves tails. */
  minTailIncreaseMs: z.number().min(0).max(60_000).default(1),
  /** The p50 over maxP99Increase counts only when it is also this much slower (ms). */
  minP50IncreaseMs: z.number().min(0).max(60_000).default(0.25),
});

export type RolloutPolicy = z.infer<typeof RolloutPolicySchema>;

export const RolloutSchema = z.union([z.literal('immediate'), RolloutPolicySchema]).default('immediate');
export type RolloutSetting = z.infer<typeof RolloutSchema>;

/** A deploy's override (`X-Slogate-Rollout` header, `slogate deploy --rollout`): `immediate` or a policy as JSON. */
export function parseRolloutOverride(text: string | undefined): RolloutSetting | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  if (text.trim() === 'immediate') return 'immediate';
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new SlogateError('SLOGATE_ERR_BAD_REQUEST', "the rollout override must be 'immediate' or a JSON policy");
  }
  const parsed = RolloutPolicySchema.safeParse(raw);
  if (!parsed.success)
    throw new SlogateError(
      'SLOGATE_ERR_BAD_REQUEST',
      `invalid rollout override: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}
