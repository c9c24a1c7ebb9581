#!/bin/sh
# restd_vs_nginx.sh — klaviyo-restd answering calls it has already answered (from the shared
# answer cache, on the workers' event loops), against nginx serving one of those answers as a
# static file. Both run two worker processes on this machine, in the same run, driven by wrk.
# Two loads:
#   repeat    the same POST /v1/campaigns/performance (about 50 campaigns) on every request
#             (bench/post.lua)
#   distinct  24 different calls, round-robin: 3 accounts x 8 timeframe presets of
#             campaigns/performance (bench/rotate.lua); nginx serves one of the 24 answers
# Prints requests/s, p50 and p99 for each and the ratios to nginx.
#
#   bench/restd_vs_nginx.sh [SECONDS] [CONNECTIONS]        defaults: 10 s, 32 connections
#
# A benchmark, not a test: it reports numbers and never fails on them (the targets: the
# distinct load at least half of nginx's throughput, its p99 within 1.5 x nginx's). Every call
# is made twice before measuring, so each is in the answer cache. STORE=redis runs the
# workers on a redis-server started here instead of LMDB. KEEP=1 keeps the work directory.
# It builds a release (no sanitizer) copy of klaviyo-restd and the simulator under build/bench,
# installs wrk and nginx-light with apt-get when they are missing, and binds only 127.0.0.1.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
secs=${1:-10}
conns=${2:-32}
threads=2

# --- tools ---------------------------------------------------------------------------------
missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing="$missing nginx-light"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
if [ "${STORE:-lmdb}" = redis ]; then
    command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
fi
if [ -n "$missing" ]; then
    echo "bench: installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
nginx=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# --- a release build -----------------------------------------------------------------------
build="$top/build/bench"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p "$build"
( cd "$build" && { [ -f Makefile ] || "$top/configure" CFLAGS="-O2 -g" >/dev/null; } &&
  make -j2 klaviyo-restd sim/klaviyo-sim >/dev/null )
restd="$build/klaviyo-restd"
sim="$build/sim/klaviyo-sim"

# --- a private directory, everything stopped on exit ----------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/km-bench-XXXXXX")
chmod 755 "$work"          # nginx's workers may run as another user: they read www/
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP:-}" ]; then echo "bench: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing answers on (curl exit 7: connection refused).
free_port() {
    p=$(( 20000 + ($$ * 7 + $1) % 30000 ))
    while :; do
        rc=0
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/" || rc=$?
        [ "$rc" -eq 7 ] && { echo "$p"; return; }
        p=$((p + 1))
    done
}

wait_http() {   # URL LOG: wait until it answers (at most 30 s)
    i=0
    until curl -s -o /dev/null "$1"; do
        i=$((i + 1))
        if [ "$i" -gt 300 ]; then
            echo "bench: $1 did not come up; $2:" >&2
            tail -n 20 "$2" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

# --- the simulator and klaviyo-restd -----------------------------------------------------
"$sim" --port 0 --port-file "$work/sim.port" --write-config "$work" --no-limits --quiet \
    2>"$work/sim.log" &
pids="$pids $!"
i=0
while [ ! -s "$work/sim.port" ]; do
    i=$((i + 1)); [ "$i" -gt 300 ] && { echo "bench: the simulator did not start" >&2; exit 1; }
    sleep 0.1
done
simport=$(cat "$work/sim.port")

redis_url=""
if [ "${STORE:-lmdb}" = redis ]; then
    redport=$(free_port 3)
    redis-server --port "$redport" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$work" >"$work/redis.log" 2>&1 &
    pids="$pids $!"
    i=0
    until redis-cli -p "$redport" ping >/dev/null 2>&1; do
        i=$((i + 1)); [ "$i" -gt 100 ] && { echo "bench: redis did not start" >&2; exit 1; }
        sleep 0.1
    done
    redis_url="redis://127.0.0.1:$redport/0"
fi

rport=$(free_port 1)
token="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
(
    set -a
    # shellcheck disable=SC1091
    . "$work/.env"
    set +a
    export XDG_CONFIG_HOME="$work/xdg" HOME="$work"     # no user .env or accounts.toml
    export ACCOUNTS_FILE="$work/accounts.toml" KLAVIYO_BASE_URL="http://127.0.0.1:$simport"
    export REST_HOST=127.0.0.1 REST_PORT="$rport" REST_API_TOKENS="$token" WORKERS=2
    export STORE_DIR="$work/store" KLAVIYO_MCP_SOCKET="$work/run/restd.sock"
    export CACHE_TTL_SECONDS=3600 LOG_LEVEL=warning REDIS_URL="$redis_url"
    # the simulator has no limits; shrink the client's rate windows so that finding the
    # window below does not wait on Klaviyo's 2 reports a minute (test-only setting)
    export RATE_LIMIT_SCALE=0.01
    exec "$restd" 2>"$work/restd.log"
) &
pids="$pids $!"
wait_http "http://127.0.0.1:$rport/health" "$work/restd.log"
url="http://127.0.0.1:$rport/v1/campaigns/performance"

body_for() { printf '{"account":"acme","start_date":"2025-01-01","end_date":"%s"}' "$1"; }
count_for() {
    curl -s -X POST -H "X-API-Key: $token" -H 'Content-Type: application/json' \
        -d "$(body_for "$1")" "$url" | sed -n 's/.*"campaign_count":\([0-9]*\).*/\1/p'
}

# The shortest window from 2025-01-01 holding at least 50 campaigns: weeks, then days.
end=2025-01-01
n=0
best=0
while [ "$n" -lt 1800 ]; do
    end=$(date -u -d "2025-01-01 + $n days" +%F)
    c=$(count_for "$end")
    c=${c:-0}
    best=$c
    [ "$c" -ge 50 ] && break
    n=$((n + 7))
done
if [ "$best" -ge 50 ] && [ "$n" -gt 0 ]; then
    m=$((n - 6))
    while [ "$m" -le "$n" ]; do
        e=$(date -u -d "2025-01-01 + $m days" +%F)
        c=$(count_for "$e")
        if [ "${c:-0}" -ge 50 ]; then end=$e; best=$c; break; fi
        m=$((m + 1))
    done
fi
body=$(body_for "$end")
echo "bench: window 2025-01-01..$end holds $best campaigns (account acme)"

# Warm it, keep the exact bytes for nginx, and check that it is a cache hit now.
mkdir -p "$work/www/v1/campaigns"
curl -s -X POST -H "X-API-Key: $token" -H 'Content-Type: application/json' -d "$body" "$url" \
    >/dev/null
curl -s -X POST -H "X-API-Key: $token" -H 'Content-Type: application/json' -d "$body" "$url" \
    >"$work/www/v1/campaigns/performance"
chmod -R a+rX "$work/www"
bytes=$(wc -c <"$work/www/v1/campaigns/performance")
calls=$(sed -n 's/.*"klaviyo_calls":\([0-9]*\).*/\1/p' "$work/www/v1/campaigns/performance")
echo "bench: response $bytes bytes; Klaviyo calls for the warm request: ${calls:-?}"

# --- nginx, 2 workers, the same bytes as a static file ----------------------------------
nport=$(free_port 2)
mkdir -p "$work/nginx-tmp"
cat >"$work/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx-tmp;
    server {
        listen 127.0.0.1:$nport;
        root $work/www;
        # the static module answers POST with 405: serve the file for it (as GET)
        location = /v1/campaigns/performance {
            default_type application/json;
            error_page 405 =200 \$uri;
        }
    }
}
EOF
"$nginx" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' 2>>"$work/nginx-error.log" &
pids="$pids $!"
wait_http "http://127.0.0.1:$nport/v1/campaigns/performance" "$work/nginx-error.log"

# --- measure -------------------------------------------------------------------------------
# to_ms VALUE: wrk prints 512.00us, 1.20ms or 1.01s
to_ms() {
    echo "$1" | awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v += 0;
                       else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'
}

run() {   # NAME URL SCRIPT
    BODY="$body" TOKEN="$token" BODIES_FILE="$work/bodies" wrk -t"$threads" -c"$conns" -d2s \
        -s "$3" "$2" >/dev/null 2>&1 || true     # warm-up, not measured
    BODY="$body" TOKEN="$token" BODIES_FILE="$work/bodies" wrk -t"$threads" -c"$conns" \
        -d"${secs}s" --latency -s "$3" "$2" >"$work/wrk-$1.txt" 2>&1 || true
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$work/wrk-$1.txt")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$work/wrk-$1.txt")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$work/wrk-$1.txt")")
    bad=$(awk '/Non-2xx/ { print $NF }' "$work/wrk-$1.txt")
    errs=$(awk '/Socket errors/ { print }' "$work/wrk-$1.txt")
    printf '%-16s %12s %10s %10s   non-2xx: %s %s\n' "$1" "${rps:-?}" "$p50" "$p99" \
        "${bad:-0}" "$errs"
    eval "rps_$1=\${rps:-0}; p99_$1=\$p99"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }

# The distinct load: 3 accounts x 8 presets, each answered twice before measuring.
: >"$work/bodies"
for acct in acme kiwi nosms; do
    for tf in yesterday last_7_days last_30_days last_90_days last_365_days this_month \
              last_month year_to_date; do
        b=$(printf '{"account":"%s","timeframe":"%s"}' "$acct" "$tf")
        echo "$b" >>"$work/bodies"
        for _ in 1 2; do
            curl -s -X POST -H "X-API-Key: $token" -H 'Content-Type: application/json' \
                -d "$b" "$url" >"$work/last.json"
        done
        grep -q '"klaviyo_calls":0' "$work/last.json" ||
            echo "bench: $b is not answered from the cache" >&2
        # nginx serves one of the 24 answers
        [ "$acct/$tf" = acme/last_90_days ] &&
            cp "$work/last.json" "$work/www/v1/campaigns/performance"
    done
done
echo "bench: nginx serves the acme last_90_days answer, $(wc -c <"$work/www/v1/campaigns/performance") bytes"
echo "bench: $(wc -l <"$work/bodies") distinct calls, each answered twice before measuring"

echo
echo "wrk: $threads threads, $conns connections, ${secs}s each; both servers with 2 workers;"
echo "store: ${STORE:-lmdb}"
printf '%-16s %12s %10s %10s\n' "load" "requests/s" "p50 ms" "p99 ms"
run repeat "$url" bench/post.lua
run distinct "$url" bench/rotate.lua
run nginx "http://127.0.0.1:$nport/v1/campaigns/performance" bench/post.lua
# shellcheck disable=SC2154
echo
echo "distinct/nginx throughput: $(ratio "$rps_distinct" "$rps_nginx")   (target >= 0.50)"
echo "distinct/nginx p99:        $(ratio "$p99_distinct" "$p99_nginx")   (target <= 1.50)"
echo "repeat/nginx throughput:   $(ratio "$rps_repeat" "$rps_nginx")"
