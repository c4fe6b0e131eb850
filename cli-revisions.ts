// `slogate deploy | rollback | revisions | apply`: clients of a running server's admin API. The token comes from the
// caller (cli.ts reads SLOGATE_ADMIN_TOKEN); the server's error code and message are printed as they come.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from './core/config.js';
import type { PlanStep } from './policies/apply-plan.js';

export const REVISIONS_USAGE = `  slogate deploy --url URL --model M --variant V --file F.onnx [--reason TEXT] [--rollout immediate|JSON]
                                                     upload a new revision; it goes live once it passes its gates
                                                     (and its rollout, docs/lifecycle.md)
  slogate rollback --url URL --model M --variant V [--to sha256:...]
                                                     return the variant to its previous (or the given) revision
  slogate revisions --url URL --model M [--json]     a model's variants, active revisions, gates and history
                                                     (these three send SLOGATE_ADMIN_TOKEN as the bearer token)
`;

export interface ClientIo {
  readonly token: string | undefined;
  readonly out: (text: string) => void;
}

export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** The error code header of a V2 error answer. */
  readonly code: string | null;
}

export async function call(url: string, init: RequestInit, io: ClientIo): Promise<Answer> {
  const headers = new Headers(init.headers);
  if (io.token !== undefined && io.token !== '') headers.set('authorization', `Bearer ${io.token}`);
  const res = await fetch(url, { ...init, headers });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { error: text };
  }
  return { status: res.status, body, code: res.headers.get('x-slogate-error-code') };
}

function required(values: Record<string, unknown>, names: string[]): void {
  for (const n of names)
    if (typeof values[n] !== 'string' || values[n] === '')
      throw new UsageError(`--${n} is required\n\n${REVISIONS_USAGE}`);
}

export class UsageError extends Error {}

/** Runs one of the three commands; resolves with the process exit status (0 ok, 1 refused or failed). */
export async function revisionsCommand(cmd: string, argv: string[], io: ClientIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      model: { type: 'string' },
      variant: { type: 'string' },
      file: { type: 'string' },
      to: { type: 'string' },
      reason: { type: 'string' },
      rollout: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  required(values, cmd === 'revisions' ? ['url', 'model'] : ['url', 'model', 'variant']);
  const base = `${(values.url as string).replace(/\/+$/, '')}/admin/models/${encodeURIComponent(values.model as string)}`;
  const variantUrl = `${base}/variants/${encodeURIComponent((values.variant as string | undefined) ?? '')}`;
  let answer: Answer;
  if (cmd === 'deploy') {
    required(values, ['file']);
    const bytes = readFileSync(values.file as string);
    answer = await call(
      `${variantUrl}/revisions`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'x-slogate-reason': values.reason ?? `slogate deploy ${values.file}`,
          ...(values.rollout === undefined ? {} : { 'x-slogate-rollout': values.rollout }),
        },
        body: bytes,
      },
      io,
    );
  } else if (cmd === 'rollback') {
    answer = await call(
      `${variantUrl}/rollback`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(values.to === undefined ? {} : { to: values.to }),
      },
      io,
    );
  } else answer = await call(base, { method: 'GET' }, io);
  if (answer.status >= 400) {
    io.out(`${answer.code ?? `HTTP ${answer.status}`}: ${answer.body.error ?? ''}\n`);
    return 1;
  }
  io.out(values.json || cmd === 'revisions' ? `${JSON.stringify(answer.body, null, 2)}\n` : summary(answer.body));
  return 0;
}

function summary(b: Record<string, unknown>): string {
  const gates = (b.gates as { gate: string; passed: boolean; detail: string }[] | undefined) ?? [];
  const lines = [
    `${b.model}/${b.variant}: ${b.result} ${b.revision}${b.previous ? ` (was ${b.previous})` : ''} in ${b.ms} ms`,
  ];
  for (const g of gates) lines.push(`  ${g.passed ? 'pass' : 'FAIL'} ${g.gate}: ${g.detail}`);
  return `${lines.join('\n')}\n`;
}

export const APPLY_USAGE = `  slogate apply --config FILE [--url URL] [--dry-run]
                                                     make a running server match the config: changed model files
                                                     are deployed (gated), new variants and routes added, removed
                                                     ones drained then unloaded; prints the plan first
`;

/** What `apply` needs from cli.ts: the config file loaded and its files hashed. */
export interface ApplyInputs {
  readonly config: Readonly<Config>;
  readonly revisionOfFile: (path: string) => Promise<string>;
}

interface ApplyAnswer {
  readonly text?: string[];
  readonly plan?: PlanStep[];
  readonly steps?: { text: string; ok: boolean; ms: number; code?: string; error?: string }[];
}

/** `slogate apply`: the server plans (POST /admin/apply, dry run), the CLI prints, then sends the files it needs. */
export async function applyCommand(argv: string[], io: ClientIo, load: (file: string) => ApplyInputs): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string' }, url: { type: 'string' }, 'dry-run': { type: 'boolean', default: false } },
  });
  required(values, ['config']);
  const { config, revisionOfFile } = load(values.config as string);
  const url = (values.url ?? `http://${config.server.host}:${config.server.port}`).replace(/\/+$/, '');
  const revisions: Record<string, string> = {};
  for (const [model, mc] of Object.entries(config.models))
    for (const [variant, vc] of Object.entries(mc.variants))
      revisions[`${model}/${variant}`] = await revisionOfFile(vc.path);
  const send = (body: Record<string, unknown>) =>
    call(
      `${url}/admin/apply`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-slogate-reason': `slogate apply ${values.config}` },
        body: JSON.stringify({ config, revisions, ...body }),
      },
      io,
    );
  const planned = await send({ dryRun: true });
  if (planned.status >= 400) return refused(planned, io);
  const text = (planned.body as ApplyAnswer).text ?? [];
  io.out(text.length === 0 ? 'nothing to do: the server runs this config\n' : `${text.join('\n')}\n`);
  if (values['dry-run'] || text.length === 0) return 0;
  // Only the files the plan uses travel: revisions of changed variants and new variants.
  const files: Record<string, string> = {};
  for (const step of (planned.body as ApplyAnswer).plan ?? [])
    if (step.kind === 'deploy' || (step.kind === 'variant' && step.change === 'add')) {
      const path = config.models[step.model]?.variants[step.variant]?.path as string;
      files[`${step.model}/${step.variant}`] = readFileSync(path).toString('base64');
    }
  const done = await send({ files });
  if (done.status >= 400) return refused(done, io);
  let failed = 0;
  for (const s of (done.body as ApplyAnswer).steps ?? []) {
    if (!s.ok) failed++;
    io.out(`${s.ok ? 'done' : 'FAILED'}   ${s.text}${s.ok ? ` in ${s.ms} ms` : `: ${s.code}: ${s.error}`}\n`);
  }
  return failed === 0 ? 0 : 1;
}

function refused(a: Answer, io: ClientIo): number {
  io.out(`${a.code ?? `HTTP ${a.status}`}: ${a.body.error ?? ''}\n`);
  return 1;
}
