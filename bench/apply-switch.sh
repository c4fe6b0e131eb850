#!/usr/bin/env bash
# A variant removed and added back by `slogate apply` under steady open-loop load (BENCHMARKS.md, "Declarative
# apply"). Expects `SLOGATE_ADMIN_TOKEN=... node dist/cli.js serve --config bench/apply-switch.yaml` running:
#   bench/apply-switch.sh RATE [DURATION_S]
# Applies bench/apply-switch-removed.yaml at 1/4 of the run (medium drained, then unloaded) and bench/apply-switch.yaml
# at 5/8 (medium loaded, checked, profiled again); prints both applies, then the bench summary and its timeline.
set -euo pipefail
rate=$1 duration=${2:-30}
url=http://127.0.0.1:18432
cli="node dist/cli.js"
$cli bench --url "$url" --route digits --rate "$rate" --duration "$duration" --warmup 2 --protocol binary \
  --name apply-switch ${ALLOW_LAG:+--allow-lag} --json > /tmp/apply-switch-bench.$$.json &
bench=$!
sleep $((2 + duration / 4))
time $cli apply --config bench/apply-switch-removed.yaml --url "$url"
sleep $((duration * 3 / 8))
time $cli apply --config bench/apply-switch.yaml --url "$url"
wait $bench
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const o = r.summary.overall;
console.log(`offered ${o.offered}, completed ${o.completed}, failed ${o.failed}, shed ${o.shed}, late ${o.late}, p99 ${o.latency.p99Ms} ms, valid ${r.valid}`);
for (const s of r.summary.timeline) console.log(`t=${s.t}s offered ${s.offered} failed ${s.failed} shed ${s.shed} p99 ${s.p99Ms} ms`);
' /tmp/apply-switch-bench.$$.json
rm -f /tmp/apply-switch-bench.$$.json
