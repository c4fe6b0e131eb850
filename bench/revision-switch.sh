#!/usr/bin/env bash
# A deploy and a rollback under steady open-loop load (BENCHMARKS.md, "Model revisions"). Expects a server started
# with `server.adminToken` = $SLOGATE_ADMIN_TOKEN serving route R whose variant V is being replaced:
#   bench/revision-switch.sh URL ROUTE MODEL VARIANT FILE RATE [DURATION_S]
# Deploys FILE at 1/4 of the run and rolls back at 5/8; prints the deploy and rollback outcomes, then the bench
# summary with its per-second timeline (bench/results/revision-switch.json). ALLOW_LAG=1 reports a run whose sender
# fell behind its schedule (marked invalid) instead of refusing it.
set -euo pipefail
url=$1 route=$2 model=$3 variant=$4 file=$5 rate=$6 duration=${7:-30}
cli="node dist/cli.js"
$cli bench --url "$url" --route "$route" --rate "$rate" --duration "$duration" --warmup 2 --protocol binary \
  --name revision-switch ${ALLOW_LAG:+--allow-lag} --json > /tmp/revision-switch-bench.$$.json &
bench=$!
sleep $((2 + duration / 4))
$cli deploy --url "$url" --model "$model" --variant "$variant" --file "$file" --reason "bench: deploy under load"
sleep $((duration * 3 / 8))
$cli rollback --url "$url" --model "$model" --variant "$variant"
wait $bench
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const o = r.summary.overall;
console.log(`offered ${o.offered}, completed ${o.completed}, failed ${o.failed}, shed ${o.shed}, late ${o.late}, p99 ${o.latency.p99Ms} ms, valid ${r.valid}`);
for (const s of r.summary.timeline) console.log(`t=${s.t}s offered ${s.offered} failed ${s.failed} shed ${s.shed} p99 ${s.p99Ms} ms`);
' /tmp/revision-switch-bench.$$.json
rm -f /tmp/revision-switch-bench.$$.json
