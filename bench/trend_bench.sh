#!/bin/sh
# trend_bench.sh — what a weekly campaign trend costs: wall time and Klaviyo calls for windows
# of 1, 3 and 12 months, by send date (the default) and by activity, against the simulator at
# Klaviyo's real rate limits (429 past them), through klaviyo-restd over REST.
#
#   bench/trend_bench.sh [BUILD_DIR]        default: build/bench (a release build, made here)
#
# SCALE=F (0 < F <= 1) shrinks every rate-limit window of the simulator and the client alike
# (RATE_LIMIT_SCALE, test-only): the figures are then scaled-back times, and the script says
# so. The default, SCALE=1, is Klaviyo's real limits. Every request is cold: the response
# cache is off (CACHE_TTL_SECONDS=0), so each one pays for all its calls; the rate windows
# carry over between requests, as they do at Klaviyo. A benchmark, not a test: it prints
# numbers and never fails on them. KEEP=1 keeps the work directory (logs).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
scale=${SCALE:-1}

# --- binaries --------------------------------------------------------------------------------
build=${1:-"$top/build/bench"}
case "$build" in /*) ;; *) build="$top/$build" ;; esac
if [ ! -x "$build/klaviyo-restd" ] || [ ! -x "$build/sim/klaviyo-sim" ]; then
    [ -x configure ] || ./autogen.sh >/dev/null 2>&1
    mkdir -p "$build"
    ( cd "$build" && { [ -f Makefile ] || "$top/configure" CFLAGS="-O2 -g" >/dev/null; } &&
      make -j2 klaviyo-restd sim/klaviyo-sim >/dev/null )
fi
restd="$build/klaviyo-restd"
sim="$build/sim/klaviyo-sim"
for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: needs $tool" >&2; exit 1; }
done

# --- a private directory, everything stopped on exit ----------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/km-trend-XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP:-}" ]; then echo "bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_file() {   # FILE WHAT
    i=0
    while [ ! -s "$1" ]; do
        i=$((i + 1)); [ "$i" -gt 300 ] && { echo "bench: $2 did not start" >&2; exit 1; }
        sleep 0.1
    done
}

# --- the simulator (limits on) and klaviyo-restd ---------------------------------------------
"$sim" --port 0 --port-file "$work/sim.port" --write-config "$work" --time-scale "$scale" \
    --quiet >"$work/sim.out" 2>"$work/sim.log" &
pids="$pids $!"
wait_file "$work/sim.port" "the simulator"
simurl="http://127.0.0.1:$(cat "$work/sim.port")"

(
    set -a
    # shellcheck disable=SC1091
    . "$work/.env"
    set +a
    export XDG_CONFIG_HOME="$work/xdg" HOME="$work"     # no user .env or accounts.toml
    export ACCOUNTS_FILE="$work/accounts.toml" KLAVIYO_BASE_URL="$simurl"
    export REST_PORT=0 WORKERS=1          # the Unix socket only: no TCP, no token
    export STORE_DIR="$work/store" KLAVIYO_MCP_SOCKET="$work/run/restd.sock"
    export CACHE_TTL_SECONDS=0 LOG_LEVEL=warning RATE_LIMIT_SCALE="$scale"
    exec "$restd" 2>"$work/restd.log"
) &
pids="$pids $!"
i=0
until curl -s -o /dev/null --unix-socket "$work/run/restd.sock" http://localhost/health; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && { echo "bench: klaviyo-restd did not start:" >&2;
                          tail -n 20 "$work/restd.log" >&2; exit 1; }
    sleep 0.1
done

# --- measure ---------------------------------------------------------------------------------
if [ "$scale" = 1 ]; then
    echo "bench: Klaviyo's real rate limits (unscaled); cold requests (cache off)"
else
    echo "bench: every rate window scaled by $scale: times are scaled back, not real"
fi
printf '%-8s %-10s %-23s %8s %8s %8s %8s %10s\n' months basis window wall_s calls \
    reports throttled series

end=2025-06-30
for months in 1 3 12; do
    start=$(date -u -d "2025-07-01 - $months months" +%F)
    for basis in send_date activity; do
        before=$(curl -s "$simurl/__sim/stats")
        body=$(printf '{"account":"acme","entity":"campaign","interval":"weekly",'`
                      `'"basis":"%s","start_date":"%s","end_date":"%s"}' "$basis" "$start" "$end")
        t0=$(date +%s.%N)
        curl -s --unix-socket "$work/run/restd.sock" -X POST \
            -H 'Content-Type: application/json' -d "$body" \
            http://localhost/v1/performance/over-time >"$work/answer.json"
        t1=$(date +%s.%N)
        after=$(curl -s "$simurl/__sim/stats")
        calls=$(jq -r '.metadata.klaviyo_calls // ("error: " + .error.code)' "$work/answer.json")
        series=$(jq -r '.data.series | length // 0' "$work/answer.json" 2>/dev/null || echo 0)
        reports=$(printf '%s\n%s\n' "$before" "$after" | jq -s -r \
            '(.[1].calls["POST /api/campaign-values-reports"] // 0)
             - (.[0].calls["POST /api/campaign-values-reports"] // 0)')
        throttled=$(printf '%s\n%s\n' "$before" "$after" | jq -s -r \
            '.[1].total_throttled - .[0].total_throttled')
        printf '%-8s %-10s %-23s %8.1f %8s %8s %8s %10s\n' "$months" "$basis" \
            "$start..$end" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
            "$calls" "$reports" "$throttled" \
            "$series"
    done
done
