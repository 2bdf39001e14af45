# Release archives of vss-server: static binaries (no cgo) for Linux and macOS on amd64
# and arm64, each packed with the README, the license files, the example configuration
# and the systemd unit, plus SHA256SUMS. The version comes from `git describe`; the build date is the
# commit's, so that the same commit builds the same archives.

RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
RELEASE_VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
RELEASE_COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
RELEASE_EPOCH     ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
RELEASE_DATE      ?= $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_LDFLAGS   := -X main.version=$(RELEASE_VERSION) -X main.commit=$(RELEASE_COMMIT) -X main.buildDate=$(RELEASE_DATE)
RELEASE_LDFLAGS   := -s -w $(VERSION_LDFLAGS)
RELEASE_FILES     := README.md LICENSE LICENSE-APACHE LICENSE-MIT deploy/vss-server-config.toml deploy/systemd/vss-server.service
DIST              ?= dist

.PHONY: release
release: ## Cross-compile vss-server for linux and darwin, amd64 and arm64, into dist/*.tar.gz with SHA256SUMS
	rm -rf $(DIST)
	mkdir -p $(DIST)
	for platform in $(RELEASE_PLATFORMS); do \
		os=$${platform%/*}; arch=$${platform#*/}; \
		name=vss-server_$(RELEASE_VERSION)_$${os}_$${arch}; \
		mkdir -p $(DIST)/$$name; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=false \
			-ldflags '$(RELEASE_LDFLAGS)' -o $(DIST)/$$name/vss-server ./cmd/vss-server; \
		cp $(RELEASE_FILES) $(DIST)/$$name/; \
		tar -C $(DIST) --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(RELEASE_EPOCH) \
			-cf - $$name | gzip -n -9 > $(DIST)/$$name.tar.gz; \
		rm -r $(DIST)/$$name; \
	done
	cd $(DIST) && sha256sum *.tar.gz > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

.PHONY: test-release-archive
test-release-archive: ## Check that a release archive (linux/amd64) holds the binary, the README, the licenses, the configuration and the unit
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(MAKE) --no-print-directory release DIST="$$tmp" RELEASE_PLATFORMS=linux/amd64 RELEASE_VERSION=v0.0.0-check >/dev/null; \
	got=$$(tar -tzf "$$tmp/vss-server_v0.0.0-check_linux_amd64.tar.gz" | LC_ALL=C sort | tr '\n' ' '); echo "$$got"; \
	want="vss-server_v0.0.0-check_linux_amd64/ "; \
	for f in LICENSE LICENSE-APACHE LICENSE-MIT README.md vss-server vss-server-config.toml vss-server.service; do \
		want="$$want""vss-server_v0.0.0-check_linux_amd64/$$f "; done; \
	if [ "$$got" != "$$want" ]; then echo "want: $$want"; exit 1; fi

.PHONY: test-release-version
test-release-version: ## Check that a release build (linux/amd64) reports its version, commit, build date and Go version
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -buildvcs=false \
		-ldflags '-X main.version=v0.0.0-check -X main.commit=0123456789abcdef -X main.buildDate=2001-02-03T04:05:06Z' \
		-o "$$tmp/vss-server" ./cmd/vss-server; \
	out=$$("$$tmp/vss-server" --version); echo "$$out"; \
	want="vss-server v0.0.0-check (commit 0123456789abcdef, built 2001-02-03T04:05:06Z, $$($(GO) env GOVERSION) linux/amd64)"; \
	if [ "$$out" != "$$want" ]; then echo "want: $$want"; exit 1; fi

.PHONY: check-systemd-unit
check-systemd-unit: ## Check deploy/systemd/vss-server.service with systemd-analyze verify (installs systemd if missing)
	@command -v systemd-analyze >/dev/null || { apt-get update && apt-get install -y --no-install-recommends systemd; }
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	CGO_ENABLED=0 $(GO) build -trimpath -o "$$tmp/vss-server" ./cmd/vss-server; \
	sed "s|/usr/local/bin/vss-server|$$tmp/vss-server|" deploy/systemd/vss-server.service > "$$tmp/vss-server.service"; \
	systemd-analyze verify "$$tmp/vss-server.service"; \
	echo "deploy/systemd/vss-server.service verified"

CLIENT_TESTS += test-release-version test-release-archive check-systemd-unit
