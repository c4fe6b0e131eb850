// `slogate apply` and the config watch: what must change for a running server to match a config, as a pure diff of
// two plain descriptions. Changed model files become new revisions (through the gates); new variants and routes are
// added; removed ones are drained, then unloaded; route changes apply at once. What a running server cannot change in
// place (a model added or removed, a model's batching, other config sections) is listed as needing a restart.

/** What a config says, or what a server runs: revisions by model and variant, route configs by name. */
export interface DeclaredState {
  readonly models: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly routes: Readonly<Record<string, unknown>>;
  /** Settings only a restart changes, by name (`server`, `models.m.maxBatch`); compared where both sides give them. */
  readonly settings?: Readonly<Record<string, unknown>>;
}

export type PlanStep =
  | {
      readonly kind: 'deploy';
      readonly model: string;
      readonly variant: string;
      readonly from: string;
      readonly to: string;
    }
  | {
      readonly kind: 'variant';
      readonly model: string;
      readonly variant: string;
      readonly change: 'add' | 'remove';
      readonly revision: string;
    }
  | { readonly kind: 'route'; readonly route: string; readonly change: 'add' | 'update' | 'remove' }
  | { readonly kind: 'restart'; readonly reason: string };

/**
 * The steps, in the order they run: revisions (each gated), new variants, new and changed routes, removed routes,
 * removed variants (once no route sends to them), then what needs a restart.
 */
export function planApply(desired: DeclaredState, running: DeclaredState): PlanStep[] {
  const deploys: PlanStep[] = [];
  const adds: PlanStep[] = [];
  const routes: PlanStep[] = [];
  const routeRemoves: PlanStep[] = [];
  const removes: PlanStep[] = [];
  const restarts: PlanStep[] = [];
  for (const [model, variants] of Object.entries(desired.models)) {
    const now = running.models[model];
    if (now === undefined) {
      restarts.push({ kind: 'restart', reason: `model ${model} is new` });
      continue;
    }
    for (const [variant, revision] of Object.entries(variants)) {
      const current = now[variant];
      if (current === undefined) adds.push({ kind: 'variant', model, variant, change: 'add', revision });
      else if (current !== revision) deploys.push({ kind: 'deploy', model, variant, from: current, to: revision });
    }
    for (const [variant, revision] of Object.entries(now))
      if (variants[variant] === undefined)
        removes.push({ kind: 'variant', model, variant, change: 'remove', revision });
  }
  for (const model of Object.keys(running.models))
    if (desired.models[model] === undefined) restarts.push({ kind: 'restart', reason: `model ${model} is removed` });
  for (const [route, config] of Object.entries(desired.routes)) {
    const now = running.routes[route];
    if (now === undefined) routes.push({ kind: 'route', route, change: 'add' });
    else if (canonical(now) !== canonical(config)) routes.push({ kind: 'route', route, change: 'update' });
  }
  for (const route of Object.keys(running.routes))
    if (desired.routes[route] === undefined) routeRemoves.push({ kind: 'route', route, change: 'remove' });
  for (const [name, value] of Object.entries(desired.settings ?? {})) {
    const now = running.settings?.[name];
    if (now !== undefined && canonical(now) !== canonical(value))
      restarts.push({ kind: 'restart', reason: `${name} changed` });
  }
  return [...deploys, ...adds, ...routes, ...routeRemoves, ...removes, ...restarts];
}

/** Whether any step needs a restart: such a plan is still carried out, the rest waits for the restart. */
export function needsRestart(plan: readonly PlanStep[]): boolean {
  return plan.some((s) => s.kind === 'restart');
}

/** JSON with object keys sorted, so two equal configs compare equal whatever their key order. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

export function describeStep(s: PlanStep): string {
  switch (s.kind) {
    case 'deploy':
      return `deploy   ${s.model}/${s.variant}: ${s.from} -> ${s.to} (gated)`;
    case 'variant':
      return s.change === 'add'
        ? `variant  ${s.model}/${s.variant}: add ${s.revision} (loaded, checked, profiled)`
        : `variant  ${s.model}/${s.variant}: remove ${s.revision} (drained, then unloaded)`;
    case 'route':
      return `route    ${s.route}: ${s.change}${s.change === 'remove' ? ' (admitted requests finish)' : ''}`;
    case 'restart':
      return `restart  ${s.reason}: not applied while running; restart with the new config`;
  }
}
