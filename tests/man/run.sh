#!/bin/sh
# Installed like a Unix service: the man pages lint clean (mandoc -T lint, or man --warnings)
# and name every option and setting the programs know; the systemd unit passes
# `systemd-analyze verify` (where systemd is installed) and carries its sandboxing; and
# `make install` into a staging directory installs the programs, both man pages, the unit and
# the examples. Exit 77 only where neither mandoc nor man exists.
set -eu

src=${KM_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${KM_TOP_BUILDDIR:-$(pwd)}
restd="$build/klaviyo-restd"
mcp="$build/klaviyo-mcp"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/km-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

pages="$src/man/klaviyo-restd.8 $src/man/klaviyo-mcp.1"

# --- lint ---------------------------------------------------------------------------------------
if command -v mandoc >/dev/null 2>&1; then
    # warnings and errors fail; style notes (long source lines) do not
    mandoc -T lint -W warning $pages || fail "mandoc -T lint"
    echo "# mandoc -T lint: clean"
elif command -v man >/dev/null 2>&1; then
    for p in $pages; do
        out=$(LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -l "$p" 2>&1 >/dev/null)
        [ -z "$out" ] || { echo "$out"; fail "man --warnings $p"; }
    done
    echo "# man --warnings: clean"
else
    echo "skipped: neither mandoc nor man"
    exit 77
fi

# --- every option and setting is documented ---------------------------------------------------
[ -x "$restd" ] && [ -x "$mcp" ] || fail "build klaviyo-restd and klaviyo-mcp first"
"$restd" --help > "$tmp/restd.help"
"$mcp" --help > "$tmp/mcp.help"
for opt in $(grep -o -- '--[a-z][a-z-]*' "$tmp/restd.help" | sort -u); do
    grep -q -- "$(echo "$opt" | sed 's/-/\\\\-/g')" "$src/man/klaviyo-restd.8" ||
        fail "klaviyo-restd.8 does not document $opt"
done
for opt in $(grep -o -- '--[a-z][a-z-]*' "$tmp/mcp.help" | sort -u); do
    grep -q -- "$(echo "$opt" | sed 's/-/\\\\-/g')" "$src/man/klaviyo-mcp.1" ||
        fail "klaviyo-mcp.1 does not document $opt"
done
n=0
for var in $(sed -n 's/^  \([A-Z][A-Z0-9_]*\) .*/\1/p' "$tmp/restd.help"); do
    grep -q "^\.B $var\$" "$src/man/klaviyo-restd.8" ||
        fail "klaviyo-restd.8 has no ENVIRONMENT entry for $var"
    n=$((n + 1))
done
[ "$n" -ge 20 ] || fail "only $n settings found in klaviyo-restd --help"
for sect in SYNOPSIS OPTIONS ENVIRONMENT FILES SIGNALS "EXIT STATUS"; do
    grep -q "^\.SH \"*$sect" "$src/man/klaviyo-restd.8" || fail "klaviyo-restd.8: no $sect"
    grep -q "^\.SH \"*$sect" "$src/man/klaviyo-mcp.1" || fail "klaviyo-mcp.1: no $sect"
done
echo "# every option and all $n settings are documented"

# --- make install into a staging directory ------------------------------------------------------
stage="$tmp/stage"
${KM_MAKE:-make} -C "$build" install DESTDIR="$stage" >"$tmp/install.log" 2>&1 ||
    { tail -n 30 "$tmp/install.log"; fail "make install"; }
find "$stage" -type f | sed "s|^$stage||" | sort > "$tmp/files"
for f in bin/klaviyo-restd bin/klaviyo-mcp share/man/man8/klaviyo-restd.8 \
    share/man/man1/klaviyo-mcp.1 lib/systemd/system/klaviyo-restd.service \
    examples/accounts.toml.example examples/.env.example examples/klaviyo-restd.env.example; do
    grep -q "/$f\$" "$tmp/files" || { cat "$tmp/files"; fail "make install did not install $f"; }
done
if grep -q 'klaviyo-sim' "$tmp/files"; then fail "make install installed the simulator"; fi
unit=$(grep '/lib/systemd/system/klaviyo-restd.service$' "$tmp/files")
unit="$stage$unit"
bindir=$(sed -n 's|^ExecStart=\(.*\)/klaviyo-restd$|\1|p' "$unit")
[ -n "$bindir" ] && [ -x "$stage$bindir/klaviyo-restd" ] ||
    fail "ExecStart does not name the installed klaviyo-restd"
echo "# make install: programs, man pages, unit, examples (no simulator)"

# --- the unit -----------------------------------------------------------------------------------
for d in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes RuntimeDirectory=klaviyo-mcp \
    StateDirectory=klaviyo-mcp CacheDirectory=klaviyo-mcp 'ExecReload=/bin/kill -HUP $MAINPID' \
    EnvironmentFile=- RestartPreventExitStatus=78 KillMode=mixed; do
    grep -q -F -- "$d" "$unit" || fail "the unit lacks $d"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify against the staged program: the unit as installed, ExecStart pointed into DESTDIR
    sed "s|^ExecStart=.*|ExecStart=$stage$bindir/klaviyo-restd|" "$unit" > "$tmp/klaviyo-restd.service"
    out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/klaviyo-restd.service" 2>&1 |
        grep -v -e 'Failed to connect' -e 'No such file or directory' -e 'to systemd' || true)
    [ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify"; }
    echo "# systemd-analyze verify: clean"
else
    echo "# systemd-analyze not installed: unit checked by its directives only"
fi
echo "PASS"
