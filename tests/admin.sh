#!/bin/sh
# tests/admin.sh — klaviyo-mcp-admin end to end: every subcommand against the Klaviyo
# simulator (at Klaviyo's real, unscaled rate limits) and a real klaviyo-restd.
#
# Accounts: the simulator's acme, kiwi and nosms; `limited` holds acme's key that has only
# campaigns:read and accounts:read; `bogus` a key Klaviyo does not know. The configuration
# lives where a user keeps it ($XDG_CONFIG_HOME/klaviyo-mcp/), so the search path is used.
# CSV is read back with Python's csv module (a real RFC 4180 reader), the progress bar is
# watched under a pseudo-terminal (script(1)), Ctrl-C is a real SIGINT.
#
# `make check` sets KLAVIYO_MCP_ADMIN, KLAVIYO_RESTD, KLAVIYO_SIM and KM_TOP_SRCDIR.
set -u

n=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/km-admin.XXXXXX")
sim_pid=""
restd_pid=""

fail() {
    echo "not ok $((n + 1)) - $*" >&2
    for f in "$tmp"/*.out "$tmp"/*.err; do
        [ -s "$f" ] && { echo "==== $f" >&2; tail -n 25 "$f" >&2; }
    done
    exit 1
}
ok() {
    n=$((n + 1))
    echo "ok $n - $*"
}
cleanup() {
    [ -n "$restd_pid" ] && kill -TERM "$restd_pid" 2>/dev/null && wait "$restd_pid" 2>/dev/null
    [ -n "$sim_pid" ] && kill -TERM "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

for v in KLAVIYO_MCP_ADMIN KLAVIYO_RESTD KLAVIYO_SIM KM_TOP_SRCDIR; do
    eval "p=\${$v:-}"
    [ -n "$p" ] || { echo "tests/admin.sh: $v must be set (run through make check)" >&2; exit 1; }
done
for c in curl python3 script; do
    command -v "$c" >/dev/null 2>&1 || { echo "tests/admin.sh: $c missing" >&2; exit 1; }
done
admin=$KLAVIYO_MCP_ADMIN

# --- the simulator and the configuration --------------------------------------------------
mkdir -p "$tmp/demo" "$tmp/home/.config/klaviyo-mcp" "$tmp/run"
chmod 700 "$tmp/run"
"$KLAVIYO_SIM" --port 0 --port-file "$tmp/port" --write-config "$tmp/demo" --quiet \
    > /dev/null 2> "$tmp/sim.err" &
sim_pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
    i=$((i + 1)); [ "$i" -le 100 ] || fail "the simulator did not start"; sleep 0.1
done
sim="http://127.0.0.1:$(cat "$tmp/port")"
limited_key=$(curl -fs "$sim/__sim/accounts" | python3 -c \
    'import json,sys; print([a for a in json.load(sys.stdin)["accounts"] if a["name"]=="acme"][0]["limited_key"])')
cfg="$tmp/home/.config/klaviyo-mcp"
cp "$tmp/demo/accounts.toml" "$cfg/accounts.toml"
cat >> "$cfg/accounts.toml" <<EOF

[limited]
api_key_env = "KLAVIYO_LIMITED_KEY"
conversion_metric_id = "OGIDGw"
label = "Acme with a campaigns-only key"

[bogus]
api_key_env = "KLAVIYO_BOGUS_KEY"
conversion_metric_id = "OGIDGw"
label = "A key Klaviyo does not know"
EOF
{
    cat "$tmp/demo/.env"
    echo "KLAVIYO_LIMITED_KEY=$limited_key"
    echo "KLAVIYO_BOGUS_KEY=pk_0000000000000000000000000000000000"
} > "$cfg/.env"
chmod 600 "$cfg/.env"
keys=$(sed -n 's/^[A-Z_]*=\(pk_[A-Za-z0-9]*\)$/\1/p' "$cfg/.env")

export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_RUNTIME_DIR="$tmp/run"
export XDG_CACHE_HOME="$tmp/cache" KLAVIYO_BASE_URL="$sim" KLAVIYO_MCP_SOCKET="$tmp/run/svc.sock"
export REST_PORT=0 WORKERS=1 LOG_LEVEL=error
unset ACCOUNTS_FILE RATE_LIMIT_SCALE REST_API_KEY REST_API_TOKENS STORE_DIR REDIS_URL \
    KLAVIYO_DEMO CACHE_TTL_SECONDS
cd "$tmp" || exit 1

# keys never appear in anything the admin prints
no_keys() {
    for k in $keys; do
        if grep -qF "$k" "$@"; then fail "a Klaviyo key was printed in $*"; fi
    done
}

# --- --help ------------------------------------------------------------------------------------
for sub in init check smoke call budget; do
    "$admin" "$sub" --help > "$tmp/help.out" 2>&1 || fail "$sub --help exited $?"
    head -n 1 "$tmp/help.out" | grep -q "^usage: klaviyo-mcp-admin $sub" ||
        fail "$sub --help does not start with its usage"
done
"$admin" --help | grep -q '^usage: klaviyo-mcp-admin COMMAND' || fail "--help"
"$admin" frobnicate > /dev/null 2>&1; [ $? -eq 2 ] || fail "an unknown command is not exit 2"
ok "--help for every subcommand; an unknown command is a usage error"

# --- check ---------------------------------------------------------------------------------------
"$admin" check > "$tmp/check.out" 2> "$tmp/check.err" || fail "check exited $?"
grep -q '^configuration OK' "$tmp/check.out" || fail "check does not say OK"
grep -q 'accounts: *acme, kiwi, nosms, limited, bogus' "$tmp/check.out" || fail "check accounts"
grep -qF "$cfg/.env" "$tmp/check.out" || fail "check does not name the .env it read"
no_keys "$tmp/check.out" "$tmp/check.err"
ok "check validates the configuration on the search path"

# a bad configuration: not TOML (an unquoted string), named with its line; exit 78
printf '[acme]\n# key\napi_key_env = KLAVIYO_ACME_KEY\nconversion_metric_id = "OGIDGw"\nlabel = "x"\n' \
    > "$tmp/bad.toml"
ACCOUNTS_FILE="$tmp/bad.toml" "$admin" check > "$tmp/bad.out" 2> "$tmp/bad.err"
[ $? -eq 78 ] || fail "check of a bad accounts.toml did not exit 78"
grep -q "CONFIG_ERROR: $tmp/bad.toml:3: api_key_env must be a quoted string (this is not valid TOML)" \
    "$tmp/bad.err" || fail "the bad line is not named"
ACCOUNTS_FILE="$tmp/bad.toml" "$admin" call list_accounts > /dev/null 2> "$tmp/bad.err"
[ $? -eq 78 ] || fail "call with a bad configuration did not exit 78"
WORKERS=0 "$admin" check > /dev/null 2> "$tmp/bad.err"
[ $? -eq 78 ] && grep -q 'WORKERS' "$tmp/bad.err" || fail "a bad setting is not a CONFIG_ERROR"
ok "a bad configuration is refused with exit 78, naming the line or the variable"

# --- check --api: OK, missing scope, bad key --------------------------------------------------
"$admin" check --api > "$tmp/api.out" 2> "$tmp/api.err"
[ $? -eq 1 ] || fail "check --api with a bad key did not exit 1"
grep -q '^acme  *OK$' "$tmp/api.out" || fail "acme is not OK"
grep -q '^kiwi  *OK$' "$tmp/api.out" || fail "kiwi is not OK"
grep -q '^limited  *missing scope: flows:read, lists:read, metrics:read' "$tmp/api.out" ||
    fail "the limited key's missing scopes are not listed"
grep -q '^bogus  *bad key' "$tmp/api.out" || fail "the bogus key is not a bad key"
no_keys "$tmp/api.out" "$tmp/api.err"
ok "check --api: OK, missing scope, bad key per account, no key printed"

# --- a shared klaviyo-restd on the socket ----------------------------------------------------
"$KLAVIYO_RESTD" --socket-only 2> "$tmp/restd.err" &
restd_pid=$!
i=0
until curl -fs -o /dev/null --unix-socket "$KLAVIYO_MCP_SOCKET" http://restd/health; do
    i=$((i + 1)); [ "$i" -le 100 ] || fail "klaviyo-restd did not start"; sleep 0.1
done

# --- call: json, csv (read back by a CSV reader), table ------------------------------------
args="account=acme start_date=2025-01-01 end_date=2025-01-31"
"$admin" call get_campaign_performance $args --format json > "$tmp/c.json" 2> "$tmp/c.err" ||
    fail "call --format json exited $?"
"$admin" call klaviyo_get_campaign_performance $args --format csv > "$tmp/c.csv" ||
    fail "call --format csv exited $?"
"$admin" call get_flows account=acme --format json > "$tmp/f.json" || fail "flows json"
"$admin" call get_flows account=acme --format csv > "$tmp/f.csv" || fail "flows csv"
python3 - "$tmp/c.json" "$tmp/c.csv" campaigns "$tmp/f.json" "$tmp/f.csv" flows <<'EOF' ||
import csv, json, sys

def text(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v

def same(cell, v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(cell) == float(v)
    return cell == text(v)

args = sys.argv[1:]
for jpath, cpath, key in (args[0:3], args[3:6]):
    env = json.load(open(jpath))
    want = env["data"][key]
    with open(cpath, newline="") as f:
        raw = f.read()
    assert "\r\n" in raw and raw.endswith("\r\n"), "CSV lines end in CRLF"
    rows = list(csv.reader(raw.splitlines(keepends=True), strict=True))
    header, body = rows[0], rows[1:]
    assert len(body) == len(want) > 0, (cpath, len(body), len(want))
    for got, obj in zip(body, want):
        assert len(got) == len(header)
        assert set(header) == set(obj), (header, list(obj))
        for name, cell in zip(header, got):
            assert same(cell, obj[name]), (cpath, name, cell, obj[name])
print("csv ok")
EOF
    fail "the CSV does not read back to the JSON data"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["metadata"]["account"]=="acme" and "warnings" in e' \
    "$tmp/c.json" || fail "--format json is not the envelope"
"$admin" call get_campaign_performance $args > "$tmp/c.table" || fail "table exited $?"
head -n 1 "$tmp/c.table" | grep -q 'campaign_id .* open_rate .* conversion_value' ||
    fail "the table has no header"
grep -Eq ' [0-9]+\.[0-9]{2}%  ' "$tmp/c.table" || fail "rates are not percentages"
grep -Eq '[0-9]\.[0-9]{2} USD' "$tmp/c.table" || fail "money has no currency"
no_keys "$tmp/c.json" "$tmp/c.csv" "$tmp/c.table" "$tmp/c.err"
ok "call: JSON envelope, CSV read back by a CSV reader equals the JSON data, a table"

# errors: the wrong case of an account name, an unknown tool, a badly typed argument
"$admin" call get_flows account=ACME > /dev/null 2> "$tmp/e.err"
[ $? -eq 1 ] || fail "an unknown account is not exit 1"
grep -q "UNKNOWN_ACCOUNT: unknown account 'ACME': account names are lower-case; did you mean 'acme'" \
    "$tmp/e.err" || fail "ACME is not UNKNOWN_ACCOUNT with a did-you-mean"
grep -q 'available_accounts' "$tmp/e.err" || fail "no list of accounts"
"$admin" call get_flows account=ACME --format json > "$tmp/e.json" 2> /dev/null
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"]["code"]=="UNKNOWN_ACCOUNT"' \
    "$tmp/e.json" || fail "--format json does not print the error envelope"
"$admin" call no_such_tool > /dev/null 2>&1; [ $? -eq 2 ] || fail "an unknown tool is not exit 2"
"$admin" call get_flows archived=maybe > /dev/null 2> "$tmp/e.err"
[ $? -eq 2 ] && grep -q 'archived must be true or false' "$tmp/e.err" || fail "typing"
"$admin" call list_accounts --format csv | head -n 1 | grep -q '^name,label' || fail "list"
ok "call: errors name the problem (wrong-case account, unknown tool, argument types)"

# --- progress bar under a pseudo-terminal; none when stderr is not a terminal ----------------
script -qec "'$admin' call get_list_health account=nosms --format csv > '$tmp/lh.csv'" \
    /dev/null > "$tmp/pty.out" 2>&1 || fail "the call under a pty failed"
grep -q 'Klaviyo calls' "$tmp/pty.out" || fail "no progress bar on a terminal"
grep -Eq '\[#+\.*\] [0-9]+/[0-9]+ Klaviyo calls' "$tmp/pty.out" || fail "the bar has no k/n"
tail -n +2 "$tmp/lh.csv" | grep -q . || fail "no rows after the progress bar"
"$admin" call get_list_health account=nosms --format csv > /dev/null 2> "$tmp/nopty.err" ||
    fail "the call without a pty failed"
grep -q 'Klaviyo calls' "$tmp/nopty.err" && fail "a progress bar on a stderr that is no terminal"
ok "a progress bar on stderr under a pseudo-terminal, none otherwise"

# --- Ctrl-C cancels the call: no Klaviyo request after it --------------------------------------
calls() {
    curl -fs "$sim/__sim/stats" | python3 -c \
        'import json,sys; print(json.load(sys.stdin)["calls"].get("GET /api/lists/{id}", 0))'
}
before=$(calls)
"$admin" call get_list_health account=acme > /dev/null 2> "$tmp/int.err" &
call_pid=$!
i=0
while [ "$(calls)" -lt $((before + 3)) ]; do
    i=$((i + 1)); [ "$i" -le 300 ] || fail "the list-health call made no requests"; sleep 0.1
done
kill -INT "$call_pid"
wait "$call_pid"
rc=$?
[ "$rc" -eq 130 ] || fail "Ctrl-C did not end the call with 130 (got $rc)"
grep -q 'interrupted; the call was cancelled' "$tmp/int.err" || fail "no word on the cancel"
sleep 1
at_cancel=$(calls)
sleep 4   # at 1 a second, four more lookups would have been made by now
after=$(calls)
[ "$after" -eq "$at_cancel" ] || fail "Klaviyo requests after Ctrl-C: $at_cancel then $after"
[ "$after" -lt $((before + 23)) ] || fail "the call was not cut short"
ok "Ctrl-C cancels the call (exit 130) and no Klaviyo request follows"

# --- smoke -----------------------------------------------------------------------------------------
"$admin" smoke --account kiwi > "$tmp/smoke.out" 2> "$tmp/smoke.err" || fail "smoke kiwi exited $?"
[ "$(grep -c '^PASS' "$tmp/smoke.out")" -eq 5 ] || fail "smoke kiwi: not 5 PASS"
grep -q '^smoke: 5 passed, 0 warned, 0 failed' "$tmp/smoke.out" || fail "smoke summary"
"$admin" smoke --account limited > "$tmp/smoke2.out" 2> "$tmp/smoke2.err"
[ $? -eq 0 ] || fail "smoke with a limited key failed"
grep -q '^WARN  flows .*lacks a scope' "$tmp/smoke2.out" || fail "no WARN for the flows scope"
grep -q '^PASS  campaign performance' "$tmp/smoke2.out" || fail "campaigns should pass"
"$admin" smoke --account bogus > "$tmp/smoke3.out" 2>&1
[ $? -eq 1 ] && grep -q '^FAIL  campaign performance *INVALID_API_KEY' "$tmp/smoke3.out" ||
    fail "smoke with a bad key does not FAIL"
"$admin" smoke --account nobody > /dev/null 2>&1; [ $? -eq 2 ] || fail "unknown --account"
no_keys "$tmp/smoke.out" "$tmp/smoke2.out" "$tmp/smoke3.out"
ok "smoke: PASS per check, WARN for a missing scope, FAIL and exit 1 for a bad key"

# --- budget (klaviyo_get_budget, from issue 13) ---------------------------------------------
if "$admin" call --list | grep -q '^klaviyo_get_budget'; then
    "$admin" budget > "$tmp/budget.out" 2> "$tmp/budget.err" || fail "budget exited $?"
    head -n 1 "$tmp/budget.out" | grep -q '^account .*report_calls_used_today' ||
        fail "budget has no header"
    grep -q '^acme ' "$tmp/budget.out" || fail "budget has no acme line"
    "$admin" budget --account acme --format csv > "$tmp/budget.csv" || fail "budget csv"
    [ "$(wc -l < "$tmp/budget.csv")" -eq 2 ] || fail "budget --account is not one row"
    ok "budget: per account, calls used and left today, next free slot per tier"
else
    "$admin" budget > /dev/null 2> "$tmp/budget.err"
    [ $? -eq 1 ] && grep -q 'has no klaviyo_get_budget tool' "$tmp/budget.err" ||
        fail "budget without the tool does not say so"
    ok "budget: this klaviyo-restd has no klaviyo_get_budget yet, and budget says so"
fi

# --- a private service when none runs; the completion knows every tool ------------------------
"$admin" call --list | cut -d' ' -f1 | sort > "$tmp/tools.out"
kill -TERM "$restd_pid"; wait "$restd_pid" 2>/dev/null; restd_pid=""
KLAVIYO_RESTD="$KLAVIYO_RESTD" "$admin" call list_accounts --format csv > "$tmp/priv.out" \
    2> "$tmp/priv.err" || fail "call with a private service exited $?"
grep -q '^acme,' "$tmp/priv.out" || fail "the private service did not answer"
[ ! -S "$KLAVIYO_MCP_SOCKET" ] || fail "the private service outlived the call"
comp="$KM_TOP_SRCDIR/mcp-shim/admin/completion/klaviyo-mcp-admin"
for t in $(cat "$tmp/tools.out"); do
    grep -q "$t" "$comp" || fail "the bash completion lacks $t"
done
ok "a private klaviyo-restd serves when none runs and stops after; completion lists every tool"

# --- init ------------------------------------------------------------------------------------------
d="$tmp/newcfg"
echo "pk_ThisIsTheKeyForInit0000000000000000" |
    "$admin" init --config-dir "$d" --account shop --label "Shop, Inc" --metric ABC123 \
        --key-stdin > "$tmp/init.out" 2> "$tmp/init.err"
rc=$?
[ -f "$d/.env" ] && [ -f "$d/accounts.toml" ] || fail "init wrote no files"
[ "$(stat -c %a "$d/.env")" = 600 ] || fail ".env is not mode 0600"
grep -q '^KLAVIYO_SHOP_KEY=pk_ThisIsTheKeyForInit' "$d/.env" || fail "the key is not in .env"
grep -Eq '^REST_API_KEY=[0-9a-f]{64}$' "$d/.env" || fail "no REST_API_KEY"
grep -q 'pk_ThisIsTheKeyForInit' "$tmp/init.out" "$tmp/init.err" && fail "init printed the key"
rest=$(sed -n 's/^REST_API_KEY=//p' "$d/.env")
grep -qF "$rest" "$tmp/init.out" "$tmp/init.err" && fail "init printed the REST key"
[ "$rc" -eq 0 ] && grep -q '^configuration OK: 1 account' "$tmp/init.out" ||
    fail "init's configuration does not validate (exit $rc)"
python3 - "$tmp/init.out" "$KLAVIYO_MCP_ADMIN" <<'EOF' || fail "the printed MCP entries are wrong"
import json, os, sys
text = open(sys.argv[1]).read()
blocks, depth, start = [], 0, None
for i, ch in enumerate(text):
    if ch == "{":
        if depth == 0:
            start = i
        depth += 1
    elif ch == "}":
        depth -= 1
        if depth == 0:
            blocks.append(json.loads(text[start:i + 1]))
assert len(blocks) == 2, len(blocks)
for b in blocks:
    srv = b["mcpServers"]["klaviyo-api"]
    assert os.path.isabs(srv["command"]) and srv["command"].endswith("/klaviyo-mcp"), srv
    assert srv["env"]["ACCOUNTS_FILE"].endswith("/newcfg/accounts.toml"), srv
print("entries ok")
EOF
cp "$d/.env" "$tmp/env.before"
"$admin" init --config-dir "$d" --account other --metric XYZ < /dev/null > "$tmp/init2.out" 2>&1
grep -q "^kept  *$d/accounts.toml" "$tmp/init2.out" || fail "init overwrote accounts.toml"
cmp -s "$d/.env" "$tmp/env.before" || fail "init overwrote .env without --force"
grep -q '^\[shop\]' "$d/accounts.toml" || fail "accounts.toml changed"
"$admin" init --config-dir "$d" --account other --metric XYZ --force < /dev/null \
    > "$tmp/init3.out" 2>&1
[ $? -eq 78 ] || fail "init --force without a key should write and then fail validation (78)"
grep -q '^\[other\]' "$d/accounts.toml" && grep -q '^KLAVIYO_OTHER_KEY=$' "$d/.env" ||
    fail "--force did not replace the files"
grep -q 'KLAVIYO_OTHER_KEY for account .other. is not set' "$tmp/init3.out" ||
    fail "validation does not say the key is missing"
"$admin" init --config-dir "$d" < /dev/null > /dev/null 2> "$tmp/init4.err"
[ $? -eq 1 ] && grep -q -- '--account is required' "$tmp/init4.err" || fail "no answers"
ok "init: 0600 .env and accounts.toml, validated, MCP entries; kept without --force"
