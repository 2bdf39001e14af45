# The Kotlin client (clients/kotlin): a Maven module whose code is generated from
# proto/vss/v1/vss.proto at build time, tested against a freshly built server.

MVN ?= mvn

.PHONY: test-kotlin
test-kotlin: build kotlin-tools ## Build the Kotlin client and run its tests against bin/vss-server (Connect, gRPC-Web, gRPC)
	cd clients/kotlin && $(MVN) -q -B verify -Dvss.server.bin=$(CURDIR)/bin/vss-server

.PHONY: install-kotlin
install-kotlin: build kotlin-tools ## Test the Kotlin client and install io.github.govss:vss-client into the local Maven repository
	cd clients/kotlin && $(MVN) -q -B install -Dvss.server.bin=$(CURDIR)/bin/vss-server

# The client as a user gets it: installed with mvn install into a throwaway local
# repository, then used by coordinates from a fresh Maven project run against bin/vss-server.
.PHONY: test-kotlin-package
test-kotlin-package: build kotlin-tools ## Install the Kotlin client into a throwaway local Maven repository and run a fresh project that depends on it against bin/vss-server
	MVN=$(MVN) VSS_SERVER_BIN=$(CURDIR)/bin/vss-server bash clients/package-tests/kotlin/run.sh

# Maven and a JDK (17 or later) come with the development machines; where they are
# missing, install Debian's.
.PHONY: kotlin-tools
kotlin-tools:
	@if ! command -v $(MVN) >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then \
		echo "installing Maven and a JDK from Debian's packages"; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends maven openjdk-17-jdk-headless >/dev/null; \
	fi

CLIENT_TESTS += test-kotlin test-kotlin-package
