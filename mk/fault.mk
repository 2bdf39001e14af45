# Fault tests (internal/faulttest): the real vss-server binary under PostgreSQL restarts,
# SIGKILL, several instances on one database and abusive connections, checked against a
# ledger of acknowledged writes. make test-go runs them too; this target runs them alone.
# Fuzz targets of every decoder of untrusted input run with their seed corpora in
# make test-go; fuzz-% fuzzes one of them for FUZZTIME.

FUZZTIME ?= 5m

.PHONY: test-fault
test-fault: ## Run the fault tests alone (about 2 minutes; starts its own PostgreSQL clusters)
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./internal/faulttest

.PHONY: fuzz-list
fuzz-list: ## List the fuzz targets; fuzz one with make fuzz-<Target> FUZZTIME=10m
	@grep -rho --include='*_test.go' --exclude-dir=node_modules '^func Fuzz[A-Za-z0-9_]*' . | sed 's/^func //' | sort

.PHONY: fuzz-%
fuzz-%: # Fuzz one target for FUZZTIME, e.g. make fuzz-FuzzConnectJSON FUZZTIME=10m
	@set +o pipefail; pkg=$$(grep -rl --include='*_test.go' --exclude-dir=node_modules '^func $*(' . | head -1 | xargs -r dirname); \
	if [ -z "$$pkg" ]; then echo "no fuzz target $*"; exit 1; fi; \
	$(GO) test -run '^$$' -fuzz '^$*$$' -fuzztime $(FUZZTIME) -parallel 1 ./$$pkg
