#!/bin/sh
# soak.sh — klaviyo-restd under a steady mixed load for a long time, with a reload every
# minute. Prints the failed requests and, per process, RSS and open descriptors at the start
# (after warm-up) and at the end.
#
#   bench/soak.sh [SECONDS]                                  default: 600 (10 minutes)
#
# 1. Warm-up: each question of the mix once with curl (a cold list health waits on Klaviyo's
#    windows for seconds; wrk would count that wait in the peak), then 5 s of wrk.
# 2. The peak: wrk with bench/soak.lua, 32 connections, no pause, for 15 s.
# 3. The soak: wrk at about 80% of that peak (a pause after each answer, and as many
#    connections as that rate needs, found in up to six 8 s calibration runs) for SECONDS,
#    while a side loop sends one uncached call a
#    second (a day that moves on each time, rotating over the three accounts) and one call
#    a second that the client abandons after 50 ms (a cancelled call: a year of daily
#    figures from that day), and SIGHUP reloads the service once a minute, the first as the
#    soak starts (so no measured worker served the warm-up, peak or calibration). The days cycle
#    through a year from 2024-06-01, where the simulator's data is as dense everywhere (a
#    report of about 130 KB for acme), so the load does not drift: a window moving on from
#    2023 parsed reports growing from 87 to 135 KB over ten minutes. (Each (account, day)
#    comes back only after 1,095 calls, long after its answer expired: every call is
#    uncached.)
#    The wrk mix: cached reads, bad arguments (400), an unknown route (404), a wrong credential
#    (403). A failed request is a 5xx, a 429, a socket error or a timeout, from wrk or from
#    the side loop's uncached calls; an abandoned call is not one.
# 4. Flat: RSS (anonymous and file-backed, and of that the LMDB store's pages), descriptors
#    and threads of the master and of the workers (summed: SIGHUP replaces them), sampled under
#    load 46 to 50 s after each reload (at 50, 110, 170 ... s, so every sample sees workers of
#    the same age), five times a second apart, the median of the five, each sample against
#    the first, in percent. "RSS less the store" is the processes' own memory: the store's
#    pages are the shared cache's data, which grows with what is kept (up to CACHE_MAX_MB).
#
# A benchmark, not a test: it reports and never fails on the figures. It builds a release copy
# (no sanitizers) under build/bench, installs wrk and curl with apt-get when they are missing,
# binds only 127.0.0.1, and keeps its work directory with KEEP=1.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
secs=${1:-600}

missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
if [ -n "$missing" ]; then
    echo "soak: installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

build="$top/build/bench"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p "$build"
( cd "$build" && { [ -f Makefile ] || "$top/configure" CFLAGS="-O2 -g" >/dev/null; } &&
  make -j2 klaviyo-restd sim/klaviyo-sim >/dev/null )
restd="$build/klaviyo-restd"
sim="$build/sim/klaviyo-sim"

work=$(mktemp -d "${TMPDIR:-/tmp}/km-soak-XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP:-}" ]; then echo "soak: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    p=$(( 20000 + ($$ * 7 + $1) % 30000 ))
    while :; do
        rc=0
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/" || rc=$?
        [ "$rc" -eq 7 ] && { echo "$p"; return; }
        p=$((p + 1))
    done
}

"$sim" --port 0 --port-file "$work/sim.port" --write-config "$work" --no-limits --quiet \
    2>"$work/sim.log" &
pids="$pids $!"
i=0
while [ ! -s "$work/sim.port" ]; do
    i=$((i + 1)); [ "$i" -gt 300 ] && { echo "soak: the simulator did not start" >&2; exit 1; }
    sleep 0.1
done
simport=$(cat "$work/sim.port")

rport=$(free_port 1)
token="soak-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
(
    set -a
    # shellcheck disable=SC1091
    . "$work/.env"
    set +a
    export XDG_CONFIG_HOME="$work/xdg" HOME="$work"
    export ACCOUNTS_FILE="$work/accounts.toml" KLAVIYO_BASE_URL="http://127.0.0.1:$simport"
    export REST_HOST=127.0.0.1 REST_PORT="$rport" REST_API_TOKENS="$token" WORKERS=2
    export STORE_DIR="$work/store" KLAVIYO_MCP_SOCKET="$work/run/restd.sock"
    export LOG_LEVEL=warning GRACEFUL_TIMEOUT_SECONDS=30
    # the simulator has no limits: shrink the client's windows (test-only) so that the side
    # loop's report calls fit Klaviyo's daily report budget at this pace: at 0.0004 the day's
    # 225 reports take 35 s, 6.5 a second, against the 2 to 4 a second that the uncached call,
    # the abandoned one (its first chunks) and the refreshes spend. (At 0.001, 2.6 a second,
    # the side loop could spend the budget; one run's last sample found 25 threads, callers
    # waiting on added threads, most likely for a hot answer whose refresh waited for it.)
    export RATE_LIMIT_SCALE=0.0004
    exec "$restd" --pid-file "$work/restd.pid" 2>"$work/restd.log"
) &
pids="$pids $!"
i=0
until curl -s -o /dev/null "http://127.0.0.1:$rport/health"; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && { echo "soak: klaviyo-restd did not start" >&2; tail -20 "$work/restd.log" >&2; exit 1; }
    sleep 0.1
done
master=$(cat "$work/restd.pid")
url="http://127.0.0.1:$rport"

# one line per process: t role pid rss_kb fds anon_kb file_kb threads store_kb (file: mapped
# files; store: the LMDB store's pages among them, counted as they are touched)
snapshot() {
    for p in $master $(pgrep -P "$master" 2>/dev/null); do
        [ -r "/proc/$p/status" ] || continue
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")
        anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$p/status")
        file=$(awk '/^RssFile:/ {print $2}' "/proc/$p/status")
        thr=$(awk '/^Threads:/ {print $2}' "/proc/$p/status")
        store=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { in_store = ($6 ~ /\/store\.mdb$/) }
                     in_store && /^Rss:/ { kb += $2 } END { print kb + 0 }' \
                "/proc/$p/smaps" 2>/dev/null || echo 0)
        fds=$(ls "/proc/$p/fd" 2>/dev/null | wc -l)
        role=worker
        [ "$p" = "$master" ] && role=master
        echo "$1 $role $p $rss $fds $anon $file $thr $store"
    done
}

# five snapshots a second apart, summed per role, and per role the median of each figure:
# one line per role: t role processes rss_kb anon_kb file_kb store_kb fds threads (medians),
# anon_min_kb own_min_kb (own: RSS less the store's pages)
sample() {
    : >"$work/rounds.txt"
    for r in 1 2 3 4 5; do
        snapshot "$1" | tee -a "$work/snapshots.txt" | awk -v r="$r" '{ k = $2; n[k]++; rs[k] += $4; f[k] += $5; a[k] += $6;
                                          fb[k] += $7; th[k] += $8; st[k] += $9 }
            END { for (k in n) print r, k, n[k], rs[k], a[k], fb[k], st[k], f[k], th[k] }' \
            >>"$work/rounds.txt"
        [ "$r" -eq 5 ] || sleep 1
    done
    for role in master worker; do
        line="$1 $role"
        for col in 3 4 5 6 7 8 9; do
            line="$line $(awk -v k="$role" -v c="$col" '$2 == k { print $c }' "$work/rounds.txt" |
                sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')"
        done
        # and the least of the five: what the processes hold between calls
        line="$line $(awk -v k="$role" '$2 == k { print $5 }' "$work/rounds.txt" | sort -n |
            head -1) $(awk -v k="$role" '$2 == k { print $4 - $7 }' "$work/rounds.txt" |
            sort -n | head -1)"
        echo "$line"
    done
}

# warm-up: every question of the mix once, to its end, then 5 s of the mix
for q in "GET /v1/accounts" "GET /v1/flows?account=acme&status=live" \
    "GET /v1/lists/health?account=acme"; do
    set -- $q
    curl -s -o /dev/null --max-time 300 -H "X-API-Key: $token" "$url$2" || true
done
curl -s -o /dev/null --max-time 300 -X POST -H "X-API-Key: $token" \
    -H 'Content-Type: application/json' \
    -d '{"account":"acme","start_date":"2025-01-01","end_date":"2025-01-31"}' \
    "$url/v1/campaigns/performance" || true
curl -s -o /dev/null --max-time 300 -X POST -H "X-API-Key: $token" \
    -H 'Content-Type: application/json' \
    -d '{"account":"kiwi","start_date":"2025-02-01","end_date":"2025-02-28"}' \
    "$url/v1/flows/performance" || true
TOKEN=$token DELAY_MS=0 wrk -t2 -c32 -d5s -s bench/soak.lua "$url" >/dev/null
TOKEN=$token DELAY_MS=0 wrk -t2 -c32 -d15s --latency -s bench/soak.lua "$url" >"$work/peak.txt"
peak=$(sed -n 's/^SOAK .* rate=\([0-9.]*\) .*/\1/p' "$work/peak.txt")
lat=$(sed -n 's/^SOAK .* p50_ms=\([0-9.]*\) .*/\1/p' "$work/peak.txt")
delay=${DELAY_MS:-2}
target=$(awk -v p="$peak" 'BEGIN { printf "%d", p * 0.8 }')
# calibration aims a little higher: the reloads and the side loop take some of the rate
aim=$(awk -v p="$peak" 'BEGIN { printf "%d", p * 0.88 }')
conns=$(awk -v t="$aim" -v d="$delay" -v l="$lat" \
    'BEGIN { c = int(t * (d + l) / 1000 + 0.5); if (c < 2) c = 2; if (c > 2000) c = 2000; print c }')
# latency grows with the load: calibration runs correct the connection count until the rate
# is within 3% of the aim (six at most); a run on a busy machine is noisy, so if none lands
# there the soak takes the fewest connections that reached the aim, else the fastest run's
# (one that only just reached the 80% target in 8 s ran the soak, with its reloads and side
# loop, at 67% of the peak)
guesses=""
for round in 1 2 3 4 5 6; do
    TOKEN=$token DELAY_MS=$delay wrk -t2 -c"$conns" -d8s -s bench/soak.lua "$url" >"$work/cal.txt"
    got=$(sed -n 's/^SOAK .* rate=\([0-9.]*\) .*/\1/p' "$work/cal.txt")
    guesses="$guesses $conns:${got%.*}/s"
    awk -v t="$aim" -v g="$got" 'BEGIN { exit !(g >= t * 0.97 && g <= t * 1.03) }' && break
    conns=$(awk -v c="$conns" -v t="$aim" -v g="$got" \
        'BEGIN { n = int(c * t / (g > 1 ? g : 1) + 0.5); if (n < 2) n = 2; if (n > 2000) n = 2000;
                 print n }')
    [ "$round" -lt 6 ] || conns=$(echo "$guesses" | tr ' ' '\n' | tr -d '/s' |
        awk -F: -v t="$aim" 'NF == 2 { if ($2 >= t && (best == "" || $1 < best)) best = $1;
                                          if ($2 > top) { top = $2; fast = $1 } }
                                END { print (best != "" ? best : fast) }')
done
echo "soak: peak $peak requests/s (32 connections, p50 $lat ms); target $target/s (aim $aim/s); calibration" \
     "(connections:rate)$guesses; soak with $conns connections and a ${delay} ms pause, for $secs s"
echo "soak: the peak run: $(grep '^SOAK' "$work/peak.txt")"

# the side loop: one uncached call and one abandoned call a second
(
    n=0; fail=0; cancelled=0; ok=0
    accts="acme kiwi nosms"
    end=$(( $(date +%s) + secs ))
    while [ "$(date +%s)" -lt "$end" ]; do
        n=$((n + 1))
        a=$(echo $accts | cut -d' ' -f$(( n % 3 + 1 )))
        d=$(date -u -d "2024-06-01 + $(( n % 365 )) days" +%Y-%m-%d)
        e=$(date -u -d "$d + 364 days" +%Y-%m-%d)
        st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X POST \
            -H "X-API-Key: $token" -H 'Content-Type: application/json' \
            -d "{\"account\":\"$a\",\"start_date\":\"$d\",\"end_date\":\"$d\"}" \
            "$url/v1/flows/performance" || true)
        case $st in 2*) ok=$((ok + 1)) ;; *) fail=$((fail + 1)); echo "uncached $a $d: $st" >>"$work/side-failures.txt" ;; esac
        rc=0
        curl -s -o /dev/null --max-time 0.05 -X POST -H "X-API-Key: $token" \
            -H 'Content-Type: application/json' \
            -d "{\"account\":\"$a\",\"entity\":\"flow\",\"start_date\":\"$d\",\"end_date\":\"$e\",\"interval\":\"daily\"}" \
            "$url/v1/performance/over-time" || rc=$?
        [ "$rc" -eq 28 ] && cancelled=$((cancelled + 1))
        sleep 1
    done
    echo "SIDE uncached_ok=$ok uncached_failed=$fail abandoned=$cancelled" >"$work/side.txt"
) &
side=$!
pids="$pids $side"

# a reload a minute, the first as the soak starts (the workers that served the warm-up, the
# peak and the calibration are not measured: every sample is of workers that served the soak
# only), and a sample 50 s after each (workers of the same age every time)
kill -HUP "$master" && echo 0 >>"$work/reloads.txt"
(
    t=0
    while [ $t -lt "$secs" ]; do
        [ $((t + 50)) -lt "$secs" ] || break
        sleep 46; sample $((t + 50)) >>"$work/series.txt"
        sleep 10; t=$((t + 60))
        if [ $t -lt "$secs" ] && kill -HUP "$master" 2>/dev/null; then
            echo "$t" >>"$work/reloads.txt"
        fi
    done
) &
hup=$!
pids="$pids $hup"

TOKEN=$token DELAY_MS=$delay wrk -t2 -c"$conns" -d"${secs}s" --timeout 30s -s bench/soak.lua \
    "$url" >"$work/soak.txt"
wait "$side" 2>/dev/null || true
wait "$hup" 2>/dev/null || true

echo "soak: $(grep '^SOAK' "$work/soak.txt")"
cat "$work/side.txt"
[ -s "$work/side-failures.txt" ] && head -5 "$work/side-failures.txt"
echo "soak: SIGHUPs sent: $(cat "$work/reloads.txt" 2>/dev/null | wc -l)"
echo "soak: samples under load, per role summed, median of five (t_s role processes rss_kb" \
     "anon_kb file_kb store_kb fds threads; store: the LMDB store's pages, part of file), then" \
     "the least of the five (anon_min_kb own_min_kb; own: RSS less the store's pages):"
sed 's/^/  /' "$work/series.txt"
# per role: each figure against the first sample, the largest difference, and the trend (a
# least-squares line through the samples, in kB a minute: a leak climbs, noise does not)
awk 'function d(x, x0) { return (x - x0) * 100 / (x0 > 0 ? x0 : 1) }
     function big(k, v) { if (v < 0) v = -v; if (v > mx[k]) mx[k] = v }
     function fit(k, y) { sx[k] += x; sy[k] += y; sxx[k] += x * x; sxy[k] += x * y }
     function slope(k,  q) { q = n[k] * sxx[k] - sx[k] ^ 2
                             return q > 0 ? (n[k] * sxy[k] - sx[k] * sy[k]) / q : 0 }
     NF >= 11 { k = $2; own = $4 - $7; x = $1 / 60;
       if (!(k in r0)) { r0[k] = $4; o0[k] = own; a0[k] = $5; f0[k] = $8; s0[k] = $7; th0[k] = $9;
                         am0[k] = $10; om0[k] = $11; t0[k] = $1 }
       big(k " rss", d($4, r0[k])); big(k " own", d(own, o0[k])); big(k " anon", d($5, a0[k]));
       big(k " fds", d($8, f0[k])); big(k " thr", d($9, th0[k])); big(k " anonmin", d($10, am0[k]));
       big(k " ownmin", d($11, om0[k]));
       n[k]++; fit(k " own", own); fit(k " anonmin", $10); fit(k " ownmin", $11);
       n[k " own"] = n[k " anonmin"] = n[k " ownmin"] = n[k];
       lr[k] = d($4, r0[k]); lo[k] = d(own, o0[k]); la[k] = d($5, a0[k]); lf[k] = d($8, f0[k]);
       lam[k] = d($10, am0[k]); lom[k] = d($11, om0[k]); ls[k] = $7; tl[k] = $1 }
     END { for (k in r0) {
               printf "soak: %s, %d s against %d s (medians): rss %+.1f%%, rss less the store " \
                   "%+.1f%% (anonymous %+.1f%%), fds %+.1f%%, store pages %d -> %d kB; largest " \
                   "difference from the first sample: rss %.1f%%, rss less the store %.1f%%, " \
                   "anonymous %.1f%%, fds %.1f%%, threads %.1f%%\n", k, tl[k], t0[k], lr[k],
                   lo[k], la[k], lf[k], s0[k], ls[k], mx[k " rss"], mx[k " own"], mx[k " anon"],
                   mx[k " fds"], mx[k " thr"]
               printf "soak: %s, the least of each five: rss less the store %+.1f%% (anonymous " \
                   "%+.1f%%), largest difference %.1f%% (anonymous %.1f%%); trend: rss less " \
                   "the store %+.0f kB/min (median), %+.0f kB/min (least); anonymous %+.0f " \
                   "kB/min (least)\n", k, lom[k], lam[k], mx[k " ownmin"], mx[k " anonmin"],
                   slope(k " own"), slope(k " ownmin"), slope(k " anonmin") } }' \
    "$work/series.txt"
echo "soak: the store file: $(du -k "$work/store/store.mdb" 2>/dev/null | cut -f1) kB"
