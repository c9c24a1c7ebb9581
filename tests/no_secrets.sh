#!/bin/sh
# tests/no_secrets.sh — runs after every other suite of `make check` (Makefile.am makes its log
# depend on theirs) and searches everything they wrote for every key and token they were
# configured with: zero hits (issue 17).
#
# Searched: each tests/*.log and tests/mcp/*.log of the build directory — the suites' own
# output, where the Klaviyo client, the shim, the simulator and the suites log. klaviyo-restd
# logs live in check_restd's temporary directories: check_restd searches each of them when it
# stops the service, and every answer it receives.
#
# The secrets: the simulator's account keys (its --write-config .env: the same deterministic
# world the suites use) and every `#define NAME "value"` whose NAME holds KEY or TOKEN in the
# suites' sources. A hit names the file and the secret's line in the private list, never the
# secret.
set -u

: "${KLAVIYO_SIM:?KLAVIYO_SIM is not set (run through make check)}"
: "${KM_TOP_SRCDIR:?KM_TOP_SRCDIR is not set (run through make check)}"

work=$(mktemp -d "${TMPDIR:-/tmp}/no_secrets.XXXXXX") || exit 99
sim_pid=""
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/cfg"

# the simulator writes its accounts' keys when it starts; it is stopped at once
"$KLAVIYO_SIM" --host 127.0.0.1 --port 0 --port-file "$work/port" --write-config "$work/cfg" \
    --quiet >"$work/sim.out" 2>&1 &
sim_pid=$!
i=0
while [ ! -s "$work/cfg/.env" ] && [ $i -lt 150 ]; do
    sleep 0.1
    i=$((i + 1))
done
[ -s "$work/cfg/.env" ] || { echo "no_secrets: the simulator wrote no .env" >&2; exit 99; }
sed -n 's/^[A-Z_]*\(KEY\|TOKEN\)[A-Z_]*=//p' "$work/cfg/.env" | tr -d '"' >"$work/secrets"
sed -n 's/^#define[ 	][ 	]*[A-Z_]*\(KEY\|TOKEN\)[A-Z_]*[ 	][ 	]*"\([^"]*\)".*/\2/p' \
    "$KM_TOP_SRCDIR"/tests/*.c >>"$work/secrets"
# values shorter than 8 bytes are words, not secrets
awk 'length($0) >= 8' "$work/secrets" | sort -u >"$work/list"
n=$(wc -l <"$work/list")
if [ "$n" -lt 6 ]; then
    echo "no_secrets: only $n secrets found; the search would prove nothing" >&2
    exit 99
fi

files=0
hits=0
for f in tests/*.log tests/mcp/*.log; do
    [ -f "$f" ] || continue
    case $f in tests/no_secrets.log) continue ;; esac
    files=$((files + 1))
    if grep -qF -f "$work/list" "$f"; then
        ln=$(grep -oF -f "$work/list" "$f" | head -n 1 | grep -nxF -f - "$work/list" | cut -d: -f1)
        echo "FAIL: $f holds configured secret #$ln"
        hits=$((hits + 1))
    fi
done
echo "searched $files suite logs for $n configured keys and tokens: $hits hit(s)"
if [ "$files" -lt 10 ]; then
    echo "no_secrets: only $files suite logs found (run through make check)" >&2
    exit 99
fi
[ "$hits" -eq 0 ]
