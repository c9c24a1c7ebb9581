# Redis for tests/container/run.sh, built from the same local Debian base as the service image
# (no image registry is reachable on the test machines; docker-compose.yml uses redis:7).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
USER redis
ENTRYPOINT ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
