# The store explorer (explorer/): a Vite app built into explorer/dist, which vss-server
# embeds and serves at /explorer/ with --explorer. The build is committed so that the
# server builds without Node.js; test-explorer fails when it is stale.

CHROMIUM ?= /usr/bin/chromium

.PHONY: build-explorer
build-explorer: build-ts explorer/node_modules ## Rebuild the store explorer into explorer/dist (commit the result)
	cd explorer && npm run build

.PHONY: check-explorer
check-explorer: build-ts explorer/node_modules ## Fail if the committed explorer/dist differs from a fresh build
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cd explorer && ./node_modules/.bin/tsc -p tsconfig.json && \
	./node_modules/.bin/vite build --logLevel warn --outDir "$$tmp/dist" --emptyOutDir && \
	if ! diff -r "$$tmp/dist" dist; then echo "explorer/dist is stale: run make build-explorer and commit it"; exit 1; fi; \
	echo "explorer/dist is fresh"

.PHONY: test-explorer
test-explorer: build check-explorer chromium ## Test the store explorer in headless Chromium against bin/vss-server, and that explorer/dist is fresh
	cd explorer && VSS_SERVER_BIN=$(CURDIR)/bin/vss-server CHROMIUM_PATH=$(CHROMIUM) npm test

.PHONY: explorer-screenshots
explorer-screenshots: build check-explorer chromium ## Retake the explorer README's screenshots (explorer/docs/*.png): the browser tests save them there
	cd explorer && VSS_SERVER_BIN=$(CURDIR)/bin/vss-server CHROMIUM_PATH=$(CHROMIUM) EXPLORER_SCREENSHOTS=$(CURDIR)/explorer/docs npm test

# Debian's Chromium drives the browser tests (playwright-core downloads no browser).
.PHONY: chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "installing Debian's chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

explorer/node_modules: explorer/package.json explorer/package-lock.json clients/ts/node_modules
	cd explorer && npm ci --no-audit --no-fund
	@touch $@

CLIENT_TESTS += test-explorer
