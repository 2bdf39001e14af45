# The VSS server. `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BUF       := tools/node_modules/.bin/buf
SQLC      := $(GO) tool -modfile=tools/go.mod sqlc
LISTEN    ?= 127.0.0.1:8080
DATA_DIR  ?= data
GOTESTFLAGS ?=
BENCH_DURATION ?= 5s
BENCH_WARMUP ?= 1s

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/vss-server (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(VERSION_LDFLAGS)' -o bin/vss-server ./cmd/vss-server

.PHONY: run
run: build ## Run a local development server on $(LISTEN): embedded store in $(DATA_DIR), no authentication
	bin/vss-server --listen $(LISTEN) --data-dir $(DATA_DIR) --auth none

# Each client and tool keeps its own targets in mk/<name>.mk and appends its test target to
# CLIENT_TESTS, so `make test-clients` (and `make test`) run them all.
CLIENT_TESTS :=
include $(sort $(wildcard mk/*.mk))

.PHONY: test
test: lint checkgenerate test-go test-rust-client test-clients test-ha ## Run everything: lint, generated-code freshness, all Go tests (with PostgreSQL), the Rust client check, the clients, the HA fault tests

.PHONY: test-clients
test-clients: $(CLIENT_TESTS) ## Build and test every client (Go, TypeScript, Kotlin, explorer, vssctl) against live servers

.PHONY: test-go
test-go: ## Run the Go tests with the race detector (starts a throwaway PostgreSQL unless VSS_TEST_POSTGRES_URL is set)
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./...

.PHONY: test-rust-client
test-rust-client: ## Run the real Rust client wallets use (vss-client-ng) against a fresh server, with each auth scheme
	bash compat/rust-client/run.sh

.PHONY: bench
bench: build ## Run the standard benchmark behind BENCHMARKS.md (about 30 minutes; PostgreSQL with production durability); results and plots go to docs/bench/
	mkdir -p docs/bench
	$(GO) run ./cmd/vss-bench --duration $(BENCH_DURATION) --warmup $(BENCH_WARMUP) --direct-solo \
		--json docs/bench/results.json --markdown docs/bench/results.md --plot docs/bench | tee docs/bench/results.txt
	$(MAKE) --no-print-directory bench-fairness | tee docs/bench/fairness.txt

# The per-user and per-address caps (fairness between users) turned off, for
# bench-fairness to compare with the defaults.
FAIRNESS_OFF = --max-concurrent-per-user=-1 --max-upload-bytes=-1 --max-connections=-1 --max-connections-per-address=-1

.PHONY: bench-fairness
bench-fairness: build ## What fairness between users costs: 64 wallets on PostgreSQL with the per-user caps off (A) and at their defaults (B), interleaved 3 times (about 4 minutes)
	$(GO) run ./cmd/vss-bench --stores postgres --bindings vss-http,connect --scenarios put-small,ldk-mix --concurrency 64 \
		--duration $(BENCH_DURATION) --warmup $(BENCH_WARMUP) --rounds 3 \
		--server-args "$(FAIRNESS_OFF)" --compare-args "--max-concurrent-per-user=0"

.PHONY: bench-smoke
bench-smoke: build ## Run every benchmark scenario briefly on both stores (seconds; checks, does not measure)
	$(GO) run ./cmd/vss-bench --smoke

.PHONY: lint
lint: tools/node_modules ## Vet, check formatting, lint the proto and check it for breaking changes
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(BUF) lint
	$(BUF) format -d --exit-code
	@if git rev-parse -q --verify main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		$(BUF) breaking --against '.git#branch=main'; fi

.PHONY: generate
generate: tools/node_modules ## Regenerate gen/ (Go, Connect), clients/ts/src/gen/ (TypeScript) and db/ (sqlc)
	$(BUF) generate
	$(SQLC) generate

.PHONY: checkgenerate
checkgenerate: tools/node_modules ## Fail if gen/, clients/ts/src/gen/ or db/ differ from what the proto and SQL produce
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate -o "$$tmp"; \
	if ! diff -r "$$tmp/gen" gen; then echo "gen/ is stale: run make generate"; exit 1; fi; \
	if ! diff -r "$$tmp/clients/ts/src/gen" clients/ts/src/gen; then echo "clients/ts/src/gen/ is stale: run make generate"; exit 1; fi
	$(SQLC) diff || { echo "db/ is stale: run make generate"; exit 1; }
	$(SQLC) vet
	@echo "generated code is fresh"

tools/node_modules: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund
	@touch $@

.PHONY: clean
clean: ## Remove build outputs
	rm -rf bin dist
