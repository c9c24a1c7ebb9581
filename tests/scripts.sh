#!/bin/sh
# tests/scripts.sh — regression tests of ./scripts/run and ./scripts/test as a new user meets
# them: a checkout configured in-tree, .env copied from .env.example (an empty REST_API_KEY=),
# a second demo from the same checkout (one message, the first demo's files kept), klaviyo-restd
# exiting on its own (its simulator must not outlive the script), and Ctrl-C/SIGTERM stopping
# everything.
#
# It runs the real scripts in a temporary copy of the checkout configured "in-tree": the
# build products are links to the programs `make` built (KLAVIYO_RESTD, KLAVIYO_SIM), the
# Makefile's targets do nothing but leave a mark, and `configure` fails as automake's does in
# a configured source directory. `make check` sets KLAVIYO_RESTD, KLAVIYO_SIM, KM_TOP_SRCDIR.
set -u

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.out; do
        [ -f "$f" ] && { echo "==== $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}

for v in KLAVIYO_RESTD KLAVIYO_SIM KM_TOP_SRCDIR; do
    eval "p=\${$v:-}"
    [ -n "$p" ] || { echo "tests/scripts.sh: $v must be set (run through make check)" >&2; exit 1; }
done
command -v curl >/dev/null 2>&1 || { echo "tests/scripts.sh: curl missing" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/km-scripts.XXXXXX")
src="$tmp/src"
a_pid=""
cleanup() {
    [ -n "$a_pid" ] && kill -TERM "$a_pid" 2>/dev/null
    # anything still running from the copy is a leftover of a failed test
    for p in $(procs_of "$src/"); do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# pids whose command line mentions $1 (no procps needed)
procs_of() {
    for d in /proc/[0-9]*; do
        c=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
        case "$c" in *"$1"*) echo "${d#/proc/}" ;; esac
    done
}

wait_health() {   # port, seconds
    i=0
    while ! curl -fs -m 1 -o /dev/null "http://127.0.0.1:$1/health"; do
        i=$((i + 1))
        [ "$i" -le $(($2 * 10)) ] || return 1
        sleep 0.1
    done
}

wait_gone() {     # pattern, seconds
    i=0
    while [ -n "$(procs_of "$1")" ]; do
        i=$((i + 1))
        [ "$i" -le $(($2 * 10)) ] || return 1
        sleep 0.1
    done
}

free_port() {     # a port the kernel just handed out on loopback
    "$KLAVIYO_SIM" --port 0 --port-file "$tmp/fp" --quiet >/dev/null 2>&1 &
    fp_pid=$!
    while [ ! -s "$tmp/fp" ]; do sleep 0.05; done
    kill "$fp_pid"; wait "$fp_pid" 2>/dev/null
    cat "$tmp/fp"; rm -f "$tmp/fp"
}

# --- a checkout configured in-tree --------------------------------------------------------
mkdir -p "$src/scripts" "$src/sim" "$tmp/home/.config" "$tmp/xdg"
chmod 700 "$tmp/xdg"
cp "$KM_TOP_SRCDIR/scripts/run" "$KM_TOP_SRCDIR/scripts/test" "$KM_TOP_SRCDIR/scripts/setup-deps" \
    "$src/scripts/"
cp "$KM_TOP_SRCDIR/.env.example" "$src/.env"          # as a new user does: REST_API_KEY=
ln -s "$KLAVIYO_RESTD" "$src/klaviyo-restd"
ln -s "$KLAVIYO_SIM" "$src/sim/klaviyo-sim"
printf '#!/bin/sh\nexit 0\n' > "$src/autogen.sh"
printf '#!/bin/sh\necho "configure: error: source directory already configured" >&2\nexit 1\n' \
    > "$src/configure"
chmod +x "$src/autogen.sh" "$src/configure"
: > "$src/config.status"
printf 'all:\n\t@touch made-in-tree\ncheck:\n\t@touch checked-in-tree\n' > "$src/Makefile"

export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_RUNTIME_DIR="$tmp/xdg"
unset ACCOUNTS_FILE REST_API_KEY REST_API_TOKENS REST_HOST KLAVIYO_MCP_SOCKET STORE_DIR \
    KLAVIYO_BASE_URL KLAVIYO_DEMO
export WORKERS=1 LOG_LEVEL=warning GRACEFUL_TIMEOUT_SECONDS=2

# --- 1. the first demo: in-tree build, .env.example's empty REST_API_KEY= -----------------
port_a=$(free_port)
REST_PORT=$port_a "$src/scripts/run" > "$tmp/a.out" 2>&1 &
a_pid=$!
wait_health "$port_a" 60 || fail "the first demo did not answer on port $port_a"
[ -f "$src/made-in-tree" ] || fail "scripts/run did not build in the in-tree configuration"
[ ! -d "$src/build/run/tests" ] || fail "scripts/run configured a second, out-of-tree build"
curl -fs -H 'X-API-Key: your-rest-secret' "http://127.0.0.1:$port_a/v1/accounts" | grep -q acme ||
    fail "an empty REST_API_KEY= in .env kept the demo credential away"
[ -f "$src/build/run/demo/accounts.toml" ] || fail "the first demo wrote no build/run/demo"
echo "ok 1 - in-tree configuration and an empty REST_API_KEY= run the demo"

# --- 2. a second demo on the same port: one message saying what to change, nothing started --
out=$(REST_PORT=$port_a "$src/scripts/run" 2>&1) && fail "a second demo on a busy port succeeded"
n=$(printf '%s\n' "$out" | grep -c 'set both REST_PORT and KLAVIYO_MCP_SOCKET')
[ "$n" -eq 1 ] || fail "want one message naming REST_PORT and KLAVIYO_MCP_SOCKET, got: $out"
[ "$(procs_of "$src/sim/" | wc -l)" -eq 1 ] || fail "a second simulator runs"
echo "ok 2 - a second instance on the same port is told what to change"

# --- 3. klaviyo-restd exits on its own (socket in use): nothing it started outlives it ------
port_b=$(free_port)
REST_PORT=$port_b "$src/scripts/run" > "$tmp/b.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] || fail "a demo whose klaviyo-restd cannot start exited 0"
grep -q 'set both REST_PORT and KLAVIYO_MCP_SOCKET' "$tmp/b.out" ||
    fail "klaviyo-restd's refusal does not say what to change"
[ "$(procs_of "$src/sim/" | wc -l)" -eq 1 ] ||
    fail "the second demo's simulator outlived scripts/run"
[ -z "$(ls -d "$src"/build/run/demo.* 2>/dev/null)" ] || fail "the second demo left its files"
[ -f "$src/build/run/demo/accounts.toml" ] || fail "the second demo deleted the first one's files"
curl -fs -m 5 -o /dev/null "http://127.0.0.1:$port_a/health" || fail "the first demo stopped"
echo "ok 3 - klaviyo-restd exiting on its own stops its simulator; the first demo is untouched"

# --- 4. SIGTERM (as Ctrl-C) stops everything the first demo started -------------------------
kill -TERM "$a_pid"
wait "$a_pid"
a_pid=""
wait_gone "$src/" 15 || fail "processes outlived scripts/run: $(procs_of "$src/")"
echo "ok 4 - SIGTERM stops klaviyo-restd and the simulator"

# --- 5. scripts/test in the in-tree configuration tests that build ---------------------------
"$src/scripts/test" > "$tmp/t.out" 2>&1 || fail "scripts/test failed in an in-tree configuration"
[ -f "$src/checked-in-tree" ] || fail "scripts/test did not run make check in-tree"
[ ! -d "$src/build/test" ] || fail "scripts/test made an out-of-tree build"
echo "ok 5 - scripts/test works in an in-tree configuration"
