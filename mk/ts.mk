# The TypeScript client (clients/ts): the npm package @govss/vss-client, with messages
# generated from proto/vss/v1/vss.proto by `make generate`, tested against a freshly built
# server through Connect-Node and the Fetch API (the browser transport).

.PHONY: build-ts
build-ts: clients/ts/node_modules ## Build the TypeScript client package into clients/ts/dist
	cd clients/ts && npm run build

.PHONY: test-ts
test-ts: build clients/ts/node_modules ## Build the TypeScript client and test it against bin/vss-server (Connect, gRPC, gRPC-Web, fetch)
	cd clients/ts && VSS_SERVER_BIN=$(CURDIR)/bin/vss-server npm test

clients/ts/node_modules: clients/ts/package.json clients/ts/package-lock.json
	cd clients/ts && npm ci --no-audit --no-fund
	@touch $@

# The package as a user gets it: npm pack, installed into fresh projects beside public
# packages only, type-checked with tsc --strict and run against bin/vss-server.
.PHONY: test-ts-package
test-ts-package: build clients/ts/node_modules ## Pack the TypeScript client, install the tarball into fresh projects, type-check (tsc --strict) and run a program using every entry point against bin/vss-server
	VSS_SERVER_BIN=$(CURDIR)/bin/vss-server bash clients/package-tests/ts/run.sh

CLIENT_TESTS += test-ts test-ts-package
