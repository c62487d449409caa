#!/usr/bin/env bash
# How fast reelay archives a large output, against curl downloading the same file from the
# same simulator on the same machine.
#
#   scripts/archive_vs_curl.sh BINARY [BYTES] [ROUNDS]
#
# Starts `reelay sim` serving a generated 1280x720 H.264 clip padded to BYTES (default 100 MB)
# and a `reelay serve` (local media, frames off) in front of it. Each round: curl downloads the
# output of a task made directly on the simulator (to a file, like the archive writes one), then
# reelay archives one task's output; reelay's time is the archiver's own (`ms` of its "output
# archived" log line: request, download, SHA-256 and write). Prints both per round and the
# ratio of the medians. Everything started is stopped on exit.
set -euo pipefail
bin=$(realpath "$1"); bytes=${2:-100000000}; rounds=${3:-5}
. "$(dirname "$0")/lib.sh"

sim_port=$(free_port)
"$bin" sim --listen "127.0.0.1:$sim_port" --run-seconds 0.2 --video-size 1280x720 \
    --video-bytes "$bytes" >"$work/sim.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q "listening" "$work/sim.out" && break; sleep 0.1; done
sim="http://127.0.0.1:$sim_port"

port=$(free_port)
server_config "$work/reelay.toml" "info,reelay_api=warn" "$sim" "$(printf '[engine]\nmax_output_bytes = 4000000000')"
"$bin" serve --config "$work/reelay.toml" --data-dir "$work/data" --listen "127.0.0.1:$port" \
    > "$work/out" 2> "$work/err" &
pids+=($!)
for _ in $(seq 1 200); do grep -q "listening" "$work/out" && break; sleep 0.1; done
key=$(grep -o 'key_[0-9a-f]*' "$work/out" | head -1)
api="http://127.0.0.1:$port"
body='{"model":"gen4_turbo","promptImage":"https://example.com/a.jpg","ratio":"1280:720","duration":5}'

wait_output() { # sim task id -> its output URL
    for _ in $(seq 1 100); do
        out=$(curl -sf -H 'x-runway-version: 2024-11-06' "$sim/v1/tasks/$1" | python3 -c 'import json,sys; t=json.load(sys.stdin); print(t["output"][0] if t.get("status")=="SUCCEEDED" else "")')
        [ -n "$out" ] && { echo "$out"; return; }
        sleep 0.1
    done
    echo "no output" >&2; exit 1
}

curl_ms=(); reelay_ms=()
for r in $(seq 1 "$rounds"); do
    id=$(curl -sf -X POST "$sim/v1/image_to_video" -H 'x-runway-version: 2024-11-06' -H 'content-type: application/json' -d "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    url=$(wait_output "$id")
    t=$(curl -sf -o "$work/curl.mp4" -w '%{time_total}' "$url")
    curl_ms+=("$(python3 -c "print(round($t*1000))")")
    rm -f "$work/curl.mp4"

    before=$(grep -c "output archived" "$work/err" || true)
    curl -sf -X POST "$api/v1/image_to_video" -H "authorization: Bearer $key" \
        -H 'x-runway-version: 2024-11-06' -H 'content-type: application/json' -d "$body" >/dev/null
    for _ in $(seq 1 600); do
        [ "$(grep -c "output archived" "$work/err" || true)" -gt "$before" ] && break
        sleep 0.1
    done
    ms=$(grep "output archived" "$work/err" | tail -1 | grep -o 'ms=[0-9]*' | cut -d= -f2)
    reelay_ms+=("$ms")
    echo "round $r: curl ${curl_ms[-1]} ms, reelay archive $ms ms"
done
serve_pid=${pids[1]}
echo "reelay serve: peak RSS $(grep VmHWM /proc/$serve_pid/status | awk '{print $2/1024}') MB after $rounds archives of $bytes bytes"
python3 - "$bytes" "${curl_ms[*]}" "${reelay_ms[*]}" <<'PY'
import statistics, sys
n = int(sys.argv[1]); c = [int(x) for x in sys.argv[2].split()]; r = [int(x) for x in sys.argv[3].split()]
mc, mr = statistics.median(c), statistics.median(r)
print(f"{n} bytes: curl median {mc} ms ({n/mc/1e3:.0f} MB/s), reelay median {mr} ms ({n/mr/1e3:.0f} MB/s): reelay at {100*mc/mr:.0f} % of curl's speed")
PY
