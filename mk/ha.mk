# High availability (deploy/ha, in progress): etcd and PostgreSQL nodes under
# Patroni from the Debian packages, started by deploy/ha/ha.sh, with the fault tests of
# internal/faulttest built with the ha tag against them.

HA_PACKAGES := patroni etcd-server haproxy

.PHONY: ha-tools
ha-tools: ## Install Patroni, etcd and HAProxy from the Debian packages when they are missing (needs root)
	@missing=""; for p in $(HA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	fi

.PHONY: test-ha
test-ha: ha-tools ## Kill the primary of a three-node Patroni cluster under load from two server instances: no acknowledged write lost
	$(GO) test -tags ha -count=1 -v -run 'TestHA' $(GOTESTFLAGS) ./internal/faulttest
