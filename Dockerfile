# syntax=docker/dockerfile:1

# Build stage: the module, exactly as `make build` builds it.
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
# Cargo.toml names the bench targets, and cargo checks that they exist.
COPY benches ./benches
RUN cargo build --release --locked

# Runtime: Redis 7 with the module loaded.
FROM redis:7-bookworm
COPY --from=builder /src/target/release/libsessiongate.so /usr/local/lib/redis/modules/libsessiongate.so
EXPOSE 6379
CMD ["redis-server", "--loadmodule", "/usr/local/lib/redis/modules/libsessiongate.so"]
