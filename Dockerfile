# syntax=docker/dockerfile:1

# Build stage: the module, exactly as `make build` builds it. The tag is
# Cargo.toml's rust-version, so building this image proves that minimum.
FROM rust:1.88-bookworm AS builder
# bindgen (redis-module's build script) needs libclang and clang's headers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libclang1-14=1:14.0.6-12 \
        libclang-common-14-dev=1:14.0.6-12 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo checks that every target Cargo.toml names exists: it names the
# benches, and copying tests/ too keeps this working if it ever names a test.
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked

# Runtime: Redis 7 with the module loaded. The image's entrypoint starts
# redis-server as the `redis` user.
FROM redis:7-bookworm
COPY --from=builder /src/target/release/libsessiongate.so /usr/local/lib/redis/modules/libsessiongate.so
EXPOSE 6379
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["redis-cli", "ping"]
CMD ["redis-server", "--loadmodule", "/usr/local/lib/redis/modules/libsessiongate.so"]
