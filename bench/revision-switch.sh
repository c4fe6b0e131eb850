#!/usr/bin/env bash
# A deploy and a rollback under steady open-loop load (BENCHMARKS.md, "Model revisions"). Expects a server started
# with `server.adminToken` = $SLOGATE_ADMIN_TOKEN serving route R whose variant V is being replaced:
#   bench/revision-switch.sh URL ROUTE MODEL VARIANT FILE RATE [DURATION_S]
# Deploys FILE at 1/4 of the run and rolls back at 5/8 through the admin API (curl: a CLI process starting on the
# server's own cores would be measured too), then prints both outcomes, the bench summary and its per-second p99
# timeline with the seconds of the deploy and the rollback marked (bench/results/revision-switch.json).
# ALLOW_LAG=1 reports a run whose sender fell behind its schedule (marked invalid) instead of refusing it.
set -euo pipefail
url=$1 route=$2 model=$3 variant=$4 file=$5 rate=$6 duration=${7:-30}
warmup=2
auth="authorization: Bearer ${SLOGATE_ADMIN_TOKEN:?set SLOGATE_ADMIN_TOKEN}"
out=$(mktemp)
node dist/cli.js bench --url "$url" --route "$route" --rate "$rate" --duration "$duration" --warmup $warmup \
  --protocol binary --name revision-switch ${ALLOW_LAG:+--allow-lag} --json > "$out" &
bench=$!
t0=$(date +%s.%N)
at() { node -e "console.log(Math.max(0, $(date +%s.%N) - $t0 - $warmup).toFixed(1))"; }
sleep $((warmup + duration / 4))
deploy_t=$(at)
curl -sS -o /dev/null -w "deploy: HTTP %{http_code} after %{time_total} s\n" -H "$auth" \
  -H 'content-type: application/octet-stream' --data-binary "@$file" \
  "$url/admin/models/$model/variants/$variant/revisions"
sleep $((duration * 3 / 8))
rollback_t=$(at)
curl -sS -o /dev/null -w "rollback: HTTP %{http_code} after %{time_total} s\n" -H "$auth" \
  -H 'content-type: application/json' -d '{}' "$url/admin/models/$model/variants/$variant/rollback"
wait $bench
node -e '
const [file, deployT, rollbackT] = process.argv.slice(1);
const r = JSON.parse(require("fs").readFileSync(file, "utf8"));
const o = r.summary.overall;
console.log(`offered ${o.offered}, completed ${o.completed}, failed ${o.failed}, shed ${o.shed}, late ${o.late}, p99 ${o.latency.p99Ms} ms, valid ${r.valid}`);
console.log(`deploy sent at t=${deployT} s, rollback at t=${rollbackT} s (since the end of the warm-up)`);
for (const s of r.summary.timeline) console.log(`t=${s.t}s offered ${s.offered} failed ${s.failed} shed ${s.shed} p99 ${s.p99Ms} ms`);
' "$out" "$deploy_t" "$rollback_t"
rm -f "$out"
