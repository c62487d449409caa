#!/usr/bin/env bash
# Submit throughput of N reelay instances on one database, measured with `reelay bench`.
#
#   scripts/bench_instances.sh BINARY BACKEND N [TASKS] [CONCURRENCY]
#
# BACKEND is sqlite (N must be 1) or postgres (needs REELAY_TEST_DATABASE_URL, an admin URL;
# a fresh database reelay_bench is created). Starts an external `reelay sim` (1 s tasks), N
# instances on free ports with rate limits off and frames off, then runs
# `reelay bench --url <all instances> --wait`, printing its JSON report. Everything started
# is stopped on exit.
set -euo pipefail
bin=$(realpath "$1"); backend=$2; n=$3; tasks=${4:-3000}; conc=${5:-64}
. "$(dirname "$0")/lib.sh"
sim_port=$(free_port)
"$bin" sim --listen "127.0.0.1:$sim_port" --run-seconds 1 >/dev/null 2>&1 &
pids+=($!)

db_env=()
if [ "$backend" = postgres ]; then
    admin=${REELAY_TEST_DATABASE_URL:?REELAY_TEST_DATABASE_URL must name a PostgreSQL server}
    psql "$admin" -qc "DROP DATABASE IF EXISTS reelay_bench" -c "CREATE DATABASE reelay_bench"
    db_env=(REELAY_DATABASE_URL="${admin%/*}/reelay_bench")
fi
server_config "$work/reelay.toml" "warn" "http://127.0.0.1:$sim_port"

urls=(); key=""
for i in $(seq 1 "$n"); do
    port=$(free_port)
    env "${db_env[@]}" "$bin" serve --config "$work/reelay.toml" --data-dir "$work/data$i" \
        --listen "127.0.0.1:$port" > "$work/out$i" 2> "$work/err$i" &
    pids+=($!)
    for _ in $(seq 1 200); do grep -q "listening" "$work/out$i" && break; sleep 0.1; done
    grep -q "listening" "$work/out$i" || { cat "$work/err$i"; exit 1; }
    [ -z "$key" ] && key=$(grep -o 'key_[0-9a-f]*' "$work/out$i" | head -1)
    urls+=("http://127.0.0.1:$port")
done
(IFS=,; "$bin" bench --url "${urls[*]}" --key "$key" --sim-url "http://127.0.0.1:$sim_port" --tasks "$tasks" --concurrency "$conc" --mode e2e --json)
