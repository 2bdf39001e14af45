# The Go client (client/, package vssclient) and vssctl, the command-line client built
# on it (cmd/vssctl). Their tests start real servers in-process, on loopback.

.PHONY: build-vssctl
build-vssctl: ## Build bin/vssctl, the command-line client (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(VERSION_LDFLAGS)' -o bin/vssctl ./cmd/vssctl

.PHONY: test-go-client
test-go-client: ## Test the Go client and vssctl against real servers, with the race detector
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./client/... ./cmd/vssctl/...

# The client as a user gets it: a fresh module built against this checkout the way
# client/README.md says (a replace directive), run against bin/vss-server.
.PHONY: test-go-module
test-go-module: build ## Build a fresh Go module against the client as client/README.md says and run it against bin/vss-server
	GO=$(GO) VSS_SERVER_BIN=$(CURDIR)/bin/vss-server bash clients/package-tests/go/run.sh

CLIENT_TESTS += test-go-client test-go-module
