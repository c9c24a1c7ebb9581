#!/bin/sh
# docker-entrypoint.sh — the container's command: klaviyo-restd, configured at run time.
#
#   (no arguments, or options)  exec klaviyo-restd [options]
#   a command (klaviyo-sim ...)  exec it (the compose demo profile runs the simulator so)
#
# Configuration comes from the environment (an env file) and ACCOUNTS_FILE, mounted read-only.
# Demo: when no accounts file is mounted but the bundled simulator's demo configuration is in
# KLAVIYO_DEMO_DIR and the simulator answers at KLAVIYO_DEMO_URL (compose --profile demo), the
# service serves the simulator's demo accounts, every answer labelled as demo data.
set -eu

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

accounts=${ACCOUNTS_FILE:-/etc/klaviyo-mcp/accounts.toml}
if [ ! -f "$accounts" ] && [ -n "${KLAVIYO_DEMO_DIR:-}" ] && [ -n "${KLAVIYO_DEMO_URL:-}" ]; then
    i=0
    until [ -s "$KLAVIYO_DEMO_DIR/accounts.toml" ] && [ -s "$KLAVIYO_DEMO_DIR/.env" ] &&
        curl -fsS -o /dev/null "$KLAVIYO_DEMO_URL/__sim/stats" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -gt 30 ]; then
            echo "docker-entrypoint: no $accounts mounted and no demo simulator answering at" \
                "$KLAVIYO_DEMO_URL; mount accounts.toml or start the demo profile" >&2
            exit 78
        fi
        sleep 1
    done
    set -a
    # shellcheck disable=SC1091
    . "$KLAVIYO_DEMO_DIR/.env"
    set +a
    export ACCOUNTS_FILE="$KLAVIYO_DEMO_DIR/accounts.toml"
    export KLAVIYO_BASE_URL="$KLAVIYO_DEMO_URL"
    export KLAVIYO_DEMO=1
    if [ -z "${REST_API_KEY:-}" ] && [ -z "${REST_API_TOKENS:-}" ]; then
        # the README's curl examples use this demo-only credential
        export REST_API_KEY=your-rest-secret
    fi
    echo "docker-entrypoint: DEMO MODE — serving the bundled simulator's demo accounts" >&2
fi
exec /usr/local/bin/klaviyo-restd "$@"
