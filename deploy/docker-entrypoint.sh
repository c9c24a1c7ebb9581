#!/bin/sh
# docker-entrypoint.sh — the container's command: klaviyo-restd, configured at run time.
#
#   (no arguments, or options)   exec klaviyo-restd [options]
#   a command (klaviyo-mcp, ...)  exec it; `docker exec -i CONTAINER docker-entrypoint.sh
#                                 klaviyo-mcp` runs the MCP shim with the service's settings
#
# Configuration comes from the environment (an env file) and ACCOUNTS_FILE, mounted read-only.
# Demo: when no accounts file is mounted but the bundled simulator's demo configuration is in
# KLAVIYO_DEMO_DIR and the simulator answers at KLAVIYO_DEMO_URL (compose --profile demo), the
# service serves the simulator's demo accounts, every answer labelled as demo data. The
# service waits up to 30 s for them; a command only uses them when they are there already.
set -eu

accounts=${ACCOUNTS_FILE:-/etc/klaviyo-mcp/accounts.toml}

# One JSON log line on stderr, like the service's own.
log() {
    printf '{"time":"%s","level":"%s","event":"%s","pid":%d,"message":"%s"}\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" "$1" "$2" "$$" "$3" >&2
}

demo_ready() {
    [ -s "$KLAVIYO_DEMO_DIR/accounts.toml" ] && [ -s "$KLAVIYO_DEMO_DIR/.env" ] &&
        curl -fsS -o /dev/null "$KLAVIYO_DEMO_URL/__sim/stats" 2>/dev/null
}

demo_env() {
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
}

demo_possible=""
if [ ! -f "$accounts" ] && [ -n "${KLAVIYO_DEMO_DIR:-}" ] && [ -n "${KLAVIYO_DEMO_URL:-}" ]; then
    demo_possible=1
fi

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    if [ -n "$demo_possible" ] && demo_ready; then
        demo_env
    fi
    exec "$@"
fi

if [ -n "$demo_possible" ]; then
    i=0
    until demo_ready; do
        i=$((i + 1))
        if [ "$i" -gt 30 ]; then
            log error config_error "no $accounts mounted and no demo simulator answering at $KLAVIYO_DEMO_URL: mount accounts.toml or start the demo profile"
            exit 78
        fi
        sleep 1
    done
    demo_env
    log info demo_mode "no accounts.toml mounted: serving the bundled simulator's demo accounts"
fi
exec /usr/local/bin/klaviyo-restd "$@"
