# klaviyo-restd in a container: built on Debian with the -dev packages, run on a slim Debian
# with only the runtime libraries, as a non-root user. No configuration or secret is baked in:
# pass the Klaviyo keys and REST tokens at run time (an env file) and mount accounts.toml
# read-only at /etc/klaviyo-mcp/accounts.toml. See README, Deployment.
#
#   docker build -t klaviyo-mcp .
#   docker run --rm -p 127.0.0.1:8080:8080 --env-file .env \
#       -v "$PWD/accounts.toml:/etc/klaviyo-mcp/accounts.toml:ro" klaviyo-mcp
ARG BASE_IMAGE=debian:bookworm-slim

# ---- build ---------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
# marks the build stage's images, so they can be pruned (podman image prune --filter label=...)
LABEL org.klaviyo-mcp.stage=build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential autoconf automake pkg-config libcurl4-openssl-dev libjson-c-dev \
        libevent-dev libinih-dev libhiredis-dev liblmdb-dev check \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN ./autogen.sh \
    && mkdir -p /build && cd /build \
    && /src/configure --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var \
    && make -j"$(nproc)" \
    && make install-strip DESTDIR=/out \
    && install -D -m 0755 sim/klaviyo-sim \
        /out/usr/local/libexec/klaviyo-mcp/klaviyo-sim \
    && install -D -m 0755 /src/deploy/docker-entrypoint.sh \
        /out/usr/local/bin/docker-entrypoint.sh

# ---- run -----------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libcurl4 libjson-c5 libevent-2.1-7 libevent-pthreads-2.1-7 libinih1 \
        libhiredis0.14 liblmdb0 ca-certificates curl tini tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 klaviyo \
    && useradd --system --uid 10001 --gid klaviyo --home-dir /var/lib/klaviyo-mcp \
        --shell /usr/sbin/nologin klaviyo \
    && install -d -o klaviyo -g klaviyo -m 0700 /var/lib/klaviyo-mcp /var/cache/klaviyo-mcp \
        /run/klaviyo-mcp /var/lib/klaviyo-mcp/demo \
    && install -d -m 0755 /etc/klaviyo-mcp
COPY --from=build /out/ /

# In a container the listener binds every interface (publish it on 127.0.0.1 on the host);
# the store is LMDB in /var/cache/klaviyo-mcp unless REDIS_URL is set. Logs: JSON lines on
# stderr. GRACEFUL_TIMEOUT_SECONDS stays under docker stop's default 10 s; compose raises both.
ENV REST_HOST=0.0.0.0 \
    REST_PORT=8080 \
    ACCOUNTS_FILE=/etc/klaviyo-mcp/accounts.toml \
    STORE_DIR=/var/cache/klaviyo-mcp \
    KLAVIYO_MCP_SOCKET=/run/klaviyo-mcp/klaviyo-mcp.sock \
    HOME=/var/lib/klaviyo-mcp \
    GRACEFUL_TIMEOUT_SECONDS=8 \
    KLAVIYO_DEMO_DIR=/var/lib/klaviyo-mcp/demo \
    KLAVIYO_DEMO_URL=http://127.0.0.1:8765
USER 10001:10001
WORKDIR /var/lib/klaviyo-mcp
EXPOSE 8080
# SIGTERM: the master closes its listeners, lets requests in flight finish within
# GRACEFUL_TIMEOUT_SECONDS, then exits 0. tini (PID 1) passes it on and reaps.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${REST_PORT}/health" || exit 1
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint.sh"]
CMD []
