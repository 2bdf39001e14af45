# The Go client (client/, package vssclient) and vssctl, the command-line client built
# on it (cmd/vssctl). Their tests start real servers in-process, on loopback.

.PHONY: build-vssctl
build-vssctl: ## Build bin/vssctl, the command-line client (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(VERSION_LDFLAGS)' -o bin/vssctl ./cmd/vssctl

.PHONY: test-go-client
test-go-client: ## Test the Go client and vssctl against real servers, with the race detector
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./client/... ./cmd/vssctl/...

CLIENT_TESTS += test-go-client
