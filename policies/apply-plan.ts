// `slogate apply`: what must change for a running server to match a config file, as a pure diff of two plain
// descriptions. Model files become new revisions (through the gates); route changes apply at once; what the running
// server cannot change in place (a model or variant added or removed, a route removed) is listed as needing a restart.

/** What a config says, or what a server runs: revisions by model and variant, route configs by name. */
export interface DeclaredState {
  readonly models: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly routes: Readonly<Record<string, unknown>>;
}

export type PlanStep =
  | {
      readonly kind: 'deploy';
      readonly model: string;
      readonly variant: string;
      readonly from: string;
      readonly to: string;
    }
  | { readonly kind: 'route'; readonly route: string; readonly change: 'add' | 'update' }
  | { readonly kind: 'restart'; readonly reason: string };

/** The steps, in order: revisions first (each gated), then routes, then what needs a restart. */
export function planApply(desired: DeclaredState, running: DeclaredState): PlanStep[] {
  const deploys: PlanStep[] = [];
  const routes: PlanStep[] = [];
  const restarts: PlanStep[] = [];
  for (const [model, variants] of Object.entries(desired.models)) {
    const now = running.models[model];
    if (now === undefined) {
      restarts.push({ kind: 'restart', reason: `model ${model} is new` });
      continue;
    }
    for (const [variant, revision] of Object.entries(variants)) {
      const current = now[variant];
      if (current === undefined) restarts.push({ kind: 'restart', reason: `variant ${model}/${variant} is new` });
      else if (current !== revision) deploys.push({ kind: 'deploy', model, variant, from: current, to: revision });
    }
    for (const variant of Object.keys(now))
      if (variants[variant] === undefined)
        restarts.push({ kind: 'restart', reason: `variant ${model}/${variant} is removed` });
  }
  for (const model of Object.keys(running.models))
    if (desired.models[model] === undefined) restarts.push({ kind: 'restart', reason: `model ${model} is removed` });
  for (const [route, config] of Object.entries(desired.routes)) {
    const now = running.routes[route];
    if (now === undefined) routes.push({ kind: 'route', route, change: 'add' });
    else if (canonical(now) !== canonical(config)) routes.push({ kind: 'route', route, change: 'update' });
  }
  for (const route of Object.keys(running.routes))
    if (desired.routes[route] === undefined) restarts.push({ kind: 'restart', reason: `route ${route} is removed` });
  return [...deploys, ...routes, ...restarts];
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
    case 'route':
      return `route    ${s.route}: ${s.change}`;
    case 'restart':
      return `restart  ${s.reason}: not applied while running; restart with the new config`;
  }
}
