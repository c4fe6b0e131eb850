// `slogate rollout status | pause | resume | abort`: a client of the admin API of rollouts. status prints each running
// rollout's phase, shares, evidence and next decision, then the finished ones with their reasons.
import { parseArgs } from 'node:util';
import { type ClientIo, call, UsageError } from './cli-revisions.js';

export const ROLLOUT_USAGE = `  slogate rollout status --url URL [--json]         running rollouts (phase, share, evidence, next decision), then
                                                     the finished ones with their reasons
  slogate rollout pause|resume|abort --url URL --model M --variant V
                                                     hold a rollout where it is, let it go on, or roll it back now
`;

interface View {
  model: string;
  variant: string;
  revision: string;
  state: string;
  phase: string;
  canaryPercent: number;
  shadowPercent: number;
  paused: boolean;
  reason: string;
  next?: { action: string; reason: string };
  snapshot?: {
    candidate: { requests: number; errors: number };
    shadow: { comparedRows: number; agreedRows: number; dropped: number };
  };
}

export async function rolloutCommand(argv: string[], io: ClientIo): Promise<number> {
  const [action = '', ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      url: { type: 'string' },
      model: { type: 'string' },
      variant: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!['status', 'pause', 'resume', 'abort'].includes(action) || values.url === undefined)
    throw new UsageError(ROLLOUT_USAGE);
  const base = `${values.url.replace(/\/+$/, '')}/admin/rollouts`;
  if (action !== 'status' && (values.model === undefined || values.variant === undefined))
    throw new UsageError(`--model and --variant are required\n\n${ROLLOUT_USAGE}`);
  const answer =
    action === 'status'
      ? await call(base, { method: 'GET' }, io)
      : await call(
          `${base}/${encodeURIComponent(values.model as string)}/${encodeURIComponent(values.variant as string)}/${action}`,
          { method: 'POST' },
          io,
        );
  if (answer.status >= 400) {
    io.out(`${answer.code ?? `HTTP ${answer.status}`}: ${answer.body.error ?? ''}\n`);
    return 1;
  }
  if (values.json || action !== 'status') io.out(`${JSON.stringify(answer.body, null, 2)}\n`);
  else io.out(statusText(answer.body as { running: View[]; finished: View[] }));
  return 0;
}

function statusText(b: { running: View[]; finished: View[] }): string {
  const lines: string[] = [];
  if (b.running.length === 0) lines.push('no rollout running');
  for (const r of b.running) {
    const share = r.phase === 'shadow' ? `shadow ${r.shadowPercent}%` : `canary ${r.canaryPercent}%`;
    lines.push(`${r.model}/${r.variant} ${r.revision.slice(0, 19)}: ${share}${r.paused ? ' (paused)' : ''}`);
    const s = r.snapshot;
    if (s !== undefined)
      lines.push(
        `  evidence: ${s.candidate.requests} requests, ${s.candidate.errors} errors; shadow ${s.shadow.agreedRows}/${s.shadow.comparedRows} rows agreed, ${s.shadow.dropped} dropped`,
      );
    if (r.next !== undefined) lines.push(`  next: ${r.next.action}: ${r.next.reason}`);
  }
  for (const r of b.finished) lines.push(`${r.model}/${r.variant} ${r.revision.slice(0, 19)}: ${r.state}: ${r.reason}`);
  return `${lines.join('\n')}\n`;
}
