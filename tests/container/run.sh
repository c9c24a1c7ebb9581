#!/bin/sh
# The container, for real: build the image (Dockerfile) with podman, start Redis, the
# simulator and two klaviyo-restd replicas as docker-compose.yml does (every container on one
# network namespace, here the host's loopback), wait until they are healthy, and check:
#   * one route called through each replica causes exactly one Klaviyo call (shared Redis);
#   * every process in a replica runs as the image's non-root user;
#   * no configured Klaviyo key or REST token is in `podman history` or the image's files;
#   * logs are JSON lines; SIGTERM (podman stop) drains and exits 0.
# Needs podman, runc and debootstrap (.ci/run installs them) and root, as ../shared notes on
# these machines describe: a Debian base image is made locally with debootstrap (kept as
# localhost/bookworm-minbase for later runs), crun is replaced by runc with cgroupfs.
# Everything else it starts — containers, the test images, temporary files — is removed on
# exit, failure included. Exit 77 ("skipped: ...") where it cannot run.
set -eu

if ! command -v podman >/dev/null 2>&1; then
    echo "skipped: no podman"
    exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
    # podman runs as root on these machines (runc, cgroupfs): go through sudo when it asks
    # for no password, else skip
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n env PATH="$PATH" KM_TOP_SRCDIR="${KM_TOP_SRCDIR:-}" sh "$0" "$@"
    fi
    echo "skipped: podman needs root on these machines (runc, cgroupfs)"
    exit 77
fi
for t in runc debootstrap curl; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "skipped: no $t"
        exit 77
    fi
done

src=${KM_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/km-container.XXXXXX")
tag="km-test-$$"
img="localhost/klaviyo-mcp-test:$$"
redis_img="localhost/klaviyo-mcp-test-redis:$$"
base="localhost/bookworm-minbase"
ctrs="$tag-redis $tag-sim $tag-r1 $tag-r2 $tag-demo $tag-probe"

printf '[containers]\ndefault_ulimits = []\n' > "$tmp/containers.conf"
export CONTAINERS_CONF="$tmp/containers.conf"
pm() { podman --runtime runc --cgroup-manager=cgroupfs "$@"; }

cleanup() {
    status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
        for c in $ctrs; do
            if pm container exists "$c" 2>/dev/null; then
                echo "==== logs of $c"
                pm logs "$c" 2>&1 | tail -n 30
            fi
        done
    fi
    for c in $ctrs; do
        pm rm -f -t 0 "$c" >/dev/null 2>&1 || true
    done
    pm rmi -f "$img" "$redis_img" >/dev/null 2>&1 || true
    # the build stage's images (Dockerfile: LABEL org.klaviyo-mcp.stage=build), now untagged
    pm image prune -f --filter label=org.klaviyo-mcp.stage=build >/dev/null 2>&1 || true
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# A TCP port on 127.0.0.1 nobody listens on, below the usual ephemeral range (32768-60999)
# so that no outgoing connection holds it (containers share the host's network here).
free_port() {
    i=0
    while [ "$i" -lt 200 ]; do
        p=$(( ( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 ) + 20000 ))
        # curl's 7 is "could not connect": nobody listens there
        rc=0
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/" 2>/dev/null || rc=$?
        if [ "$rc" -eq 7 ]; then
            echo "$p"
            return 0
        fi
        i=$((i + 1))
    done
    fail "no free port"
}

# --- images --------------------------------------------------------------------------------
if ! pm image exists "$base"; then
    echo "# making $base with debootstrap (once)"
    debootstrap --variant=minbase bookworm "$tmp/rootfs" >"$tmp/debootstrap.log" 2>&1 ||
        { tail -n 20 "$tmp/debootstrap.log"; fail "debootstrap"; }
    tar -C "$tmp/rootfs" -c . | pm import - "$base:latest" >/dev/null
    rm -rf "$tmp/rootfs"
fi
echo "# building the image from $src"
pm build --format docker --network host --build-arg BASE_IMAGE="$base" -t "$img" \
    -f "$src/Dockerfile" "$src" >"$tmp/build.log" 2>&1 ||
    { tail -n 40 "$tmp/build.log"; fail "podman build"; }
pm build --format docker --network host --build-arg BASE_IMAGE="$base" -t "$redis_img" \
    -f "$src/tests/container/redis.Dockerfile" "$src/tests/container" >"$tmp/redis-build.log" \
    2>&1 || { tail -n 20 "$tmp/redis-build.log"; fail "podman build (redis)"; }

# the image's own settings: non-root user, healthcheck, stop signal
user=$(pm image inspect --format '{{.Config.User}}' "$img")
[ "$user" = "10001:10001" ] || fail "image user is '$user'"
pm image inspect --format '{{json .Config.Healthcheck}}' "$img" | grep -q '/health' ||
    fail "no HEALTHCHECK on /health"
[ "$(pm image inspect --format '{{.Config.StopSignal}}' "$img")" = "SIGTERM" ] ||
    fail "STOPSIGNAL is not SIGTERM"

# --- Redis, the simulator, two replicas ------------------------------------------------------
redis_port=$(free_port)
sim_port=$(free_port)
p1=$(free_port)
p2=$(free_port)
[ "$p1" != "$p2" ] && [ "$sim_port" != "$redis_port" ] || fail "port collision"

pm run -d --name "$tag-redis" --network host "$redis_img" --port "$redis_port" >/dev/null

mkdir -p "$tmp/cfg"
chmod 0777 "$tmp/cfg"    # the simulator writes its demo configuration here as uid 10001
pm run -d --name "$tag-sim" --network host -v "$tmp/cfg:/cfg" "$img" \
    /usr/local/libexec/klaviyo-mcp/klaviyo-sim --host 127.0.0.1 --port "$sim_port" \
    --write-config /cfg >/dev/null
i=0
until [ -s "$tmp/cfg/.env" ] && curl -fsS -o /dev/null "http://127.0.0.1:$sim_port/__sim/stats"; do
    i=$((i + 1))
    [ "$i" -le 100 ] || fail "the simulator did not start"
    sleep 0.2
done

# The secrets, given only at run time: the simulator's account keys and a fresh REST token.
token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
keys=$(sed -n 's/^[A-Z0-9_]*=//p' "$tmp/cfg/.env")
[ -n "$keys" ] || fail "no keys in the simulator's configuration"
{
    grep -v '^#' "$tmp/cfg/.env"
    echo "REST_API_TOKENS=$token"
    echo "KLAVIYO_BASE_URL=http://127.0.0.1:$sim_port"
    echo "REDIS_URL=redis://127.0.0.1:$redis_port/0"
    echo "WORKERS=2"
    echo "REST_HOST=127.0.0.1"
    echo "GRACEFUL_TIMEOUT_SECONDS=5"
} > "$tmp/restd.env"
chmod 0600 "$tmp/restd.env"

# As docker-compose.yml: a read-only root, tmpfs for the socket and store directories, no
# capabilities. (compose gives the tmpfs mode=1777; podman 4.3 with runc ignores mode= there,
# and its own U option hands the tmpfs to the container's user instead.)
for n in 1 2; do
    eval "port=\$p$n"
    pm run -d --name "$tag-r$n" --network host --env-file "$tmp/restd.env" \
        -e REST_PORT="$port" \
        -v "$tmp/cfg/accounts.toml:/etc/klaviyo-mcp/accounts.toml:ro" \
        --read-only --tmpfs "/run/klaviyo-mcp:rw,U" \
        --tmpfs "/var/cache/klaviyo-mcp:rw,U" --tmpfs /tmp \
        --cap-drop ALL --security-opt no-new-privileges "$img" >/dev/null
done

# healthy: the image's HEALTHCHECK passes in each replica
for c in "$tag-r1" "$tag-r2"; do
    i=0
    until pm healthcheck run "$c" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -le 60 ] || fail "$c did not become healthy"
        sleep 1
    done
done
echo "# redis :$redis_port, simulator :$sim_port, replicas :$p1 :$p2 — healthy"

# --- one route through each replica, one Klaviyo call -------------------------------------------
sim_total() {
    curl -fsS "http://127.0.0.1:$sim_port/__sim/stats" |
        sed -n 's/.*"total_calls": *\([0-9]*\).*/\1/p'
}
curl -fsS -X POST "http://127.0.0.1:$sim_port/__sim/reset" >/dev/null
[ "$(sim_total)" = "0" ] || fail "the simulator did not reset"
for port in "$p1" "$p2"; do
    code=$(curl -sS -o "$tmp/answer.json" -w '%{http_code}' -H "X-API-Key: $token" \
        "http://127.0.0.1:$port/v1/flows?account=acme&status=live")
    [ "$code" = "200" ] || { cat "$tmp/answer.json"; fail "GET /v1/flows on :$port: $code"; }
    grep -q '"flows"' "$tmp/answer.json" || fail "no flows in the answer on :$port"
done
calls=$(sim_total)
[ "$calls" = "1" ] || fail "two replicas caused $calls Klaviyo calls, expected 1 (shared Redis)"
echo "# one route through each replica: $calls Klaviyo call"
# the REST port needs the token
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p1/v1/flows?account=acme")
[ "$code" = "401" ] || fail "no token answered $code"

# --- demo mode (compose --profile demo): no accounts.toml, no key, the simulator's config ------
p3=$(free_port)
pm run -d --name "$tag-demo" --network host -e REST_PORT="$p3" -e REST_HOST=127.0.0.1 \
    -e WORKERS=1 -e KLAVIYO_DEMO_URL="http://127.0.0.1:$sim_port" \
    -v "$tmp/cfg:/var/lib/klaviyo-mcp/demo:ro" "$img" >/dev/null
i=0
until pm healthcheck run "$tag-demo" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -le 60 ] || fail "the demo container did not become healthy"
    sleep 1
done
code=$(curl -sS -o "$tmp/demo.json" -w '%{http_code}' -H "X-API-Key: your-rest-secret" \
    "http://127.0.0.1:$p3/v1/flows?account=acme")
[ "$code" = "200" ] || { cat "$tmp/demo.json"; fail "demo GET /v1/flows: $code"; }
grep -q 'Demo data' "$tmp/demo.json" || fail "the demo answer is not labelled as demo data"
echo "# demo mode: answers from the bundled simulator, labelled as demo data"

# --- MCP inside the container (how macOS and Windows users point Claude at it) --------------
mcp_lines='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"container-test","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"klaviyo_get_flows","arguments":{"account":"acme"}}}'
for c in "$tag-r2" "$tag-demo"; do
    : > "$tmp/mcp.out"
    # stdin stays open until the answer is out: the end of input cancels calls in flight
    {
        printf '%s\n' "$mcp_lines"
        i=0
        while [ "$i" -lt 300 ] && ! grep -q '"id":2' "$tmp/mcp.out"; do
            sleep 0.2
            i=$((i + 1))
        done
    } | pm exec -i "$c" docker-entrypoint.sh klaviyo-mcp > "$tmp/mcp.out" 2>"$tmp/mcp.err" ||
        { cat "$tmp/mcp.err"; fail "klaviyo-mcp in $c failed"; }
    grep '"id":2' "$tmp/mcp.out" | grep -q '"flow_count"' ||
        { cat "$tmp/mcp.out" "$tmp/mcp.err"; fail "klaviyo-mcp in $c gave no flows"; }
    if grep '"id":2' "$tmp/mcp.out" | grep -q '"isError":true'; then
        cat "$tmp/mcp.out"; fail "klaviyo-mcp in $c answered an error"
    fi
done
echo "# klaviyo-mcp run with docker exec -i answers tools/call, with and without demo mode"

# --- non-root ---------------------------------------------------------------------------------
for c in "$tag-r1" "$tag-r2" "$tag-sim" "$tag-demo"; do
    users=$(pm top "$c" user | tail -n +2 | tr -s ' \n' ' ')
    [ -n "$users" ] || fail "no processes listed in $c"
    for u in $users; do
        [ "$u" = "klaviyo" ] || fail "$c runs a process as $u ($users)"
    done
done
[ "$(pm exec "$tag-r1" id -u)" = "10001" ] || fail "the service does not run as uid 10001"
echo "# every process runs as klaviyo (uid 10001)"

# --- no secret in the image ---------------------------------------------------------------------
printf '%s\n' "$token" $keys > "$tmp/secrets"
grep -qF -f "$tmp/secrets" "$tmp/restd.env" || fail "the secrets file is empty"   # control
pm history --no-trunc --format '{{.CreatedBy}} {{.Comment}}' "$img" > "$tmp/history"
[ -s "$tmp/history" ] || fail "podman history is empty"
if grep -F -f "$tmp/secrets" "$tmp/history"; then fail "a secret is in podman history"; fi
pm image inspect "$img" > "$tmp/inspect.json"
if grep -F -f "$tmp/secrets" "$tmp/inspect.json"; then fail "a secret is in the image config"; fi
pm create --name "$tag-probe" "$img" >/dev/null
mkdir "$tmp/fs"
pm export "$tag-probe" | tar -x -C "$tmp/fs" 2>/dev/null
[ -x "$tmp/fs/usr/local/bin/klaviyo-restd" ] || fail "the exported image has no klaviyo-restd"
if grep -rlF -f "$tmp/secrets" "$tmp/fs" 2>/dev/null; then fail "a secret is in the image's files"; fi
rm -rf "$tmp/fs"
echo "# no key or token in podman history, the image config or its files"

# --- logs and a graceful stop --------------------------------------------------------------------
pm logs "$tag-r1" > "$tmp/r1.log" 2>&1
[ -s "$tmp/r1.log" ] || fail "no log lines"
if grep -v '^{"time":"' "$tmp/r1.log"; then fail "a log line is not a JSON object"; fi
if grep -F -f "$tmp/secrets" "$tmp/r1.log"; then fail "a secret is in the log"; fi
pm stop -t 30 "$tag-r1" >/dev/null
st=$(pm inspect --format '{{.State.ExitCode}}' "$tag-r1")
[ "$st" = "0" ] || fail "klaviyo-restd exited $st on SIGTERM"
pm logs "$tag-r1" 2>&1 | grep -q '"event":"stopping"' || fail "no stopping line in the log"
pm logs "$tag-r1" 2>&1 | grep -q '"event":"stopped"' || fail "no stopped line in the log"
echo "# SIGTERM: drained, exit status 0"
echo "PASS"
