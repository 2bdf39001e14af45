# High availability (deploy/ha): etcd and PostgreSQL nodes under
# Patroni from the Debian packages, started by deploy/ha/ha.sh, with the fault tests of
# internal/faulttest built with the ha tag against them.

HA_PACKAGES := patroni etcd-server haproxy

.PHONY: ha-tools
ha-tools: ## Install Patroni, etcd and HAProxy from the Debian packages when they are missing (as root, or through sudo)
	@missing=""; for p in $(HA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		sudo=""; if [ "$$(id -u)" != 0 ]; then sudo="sudo"; fi; \
		echo "installing$$missing from the Debian packages (for deploy/ha and its tests)"; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$missing >/dev/null || \
		{ $$sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q $$missing >/dev/null; } || \
		{ echo "could not install$$missing: install them (apt-get install$$missing) and run make again" >&2; exit 1; }; \
	fi

.PHONY: test-ha
test-ha: ha-tools ## The HA fault tests on a three-node Patroni cluster (deploy/ha): failovers under load lose no acknowledged write; the restore drill
	$(GO) test -tags ha -count=1 -v -run 'TestHA' $(GOTESTFLAGS) ./internal/faulttest
