#!/usr/bin/env bash
# Proves the Kotlin client from the outside: installs it with the command
# clients/kotlin/README.md gives (mvn install -DskipTests) into a throwaway local Maven
# repository, then builds a fresh Maven project (this directory) that depends on
# io.github.govss:vss-client:0.1.0 from that repository alone (offline) and runs its
# program against a real vss-server on loopback.
#
# The throwaway repository starts as a copy of the normal one (~/.m2/repository, or
# MAVEN_REPO), so that only what it lacks comes from Maven Central; what was downloaded
# is copied back afterwards (never the client itself), so the next run needs no network.
#
# The program also logs in with LNURL-auth, at a second server run with --lnurl-auth: its
# --public-url must lead back to it, so its port is chosen before it starts.
# Usage: bash clients/package-tests/kotlin/run.sh   (after make build; VSS_SERVER_BIN overrides)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
# shellcheck source=../server.sh
source "$here/../server.sh"

mvn="${MVN:-mvn}"
normal="${MAVEN_REPO:-$HOME/.m2/repository}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/vss-kotlin-package.XXXXXX")"
trap 'stop_server; stop_lnurl_server; rm -rf "$tmp" "$vss_server_log" "$lnurl_server_log"' EXIT

repo="$tmp/m2"
mkdir -p "$repo"
if [[ -d "$normal" ]]; then
	cp -a --reflink=auto "$normal/." "$repo/"
fi
# A client installed earlier (make install-kotlin) must not stand in for this build.
rm -rf "$repo/io/github/govss"

echo "== mvn install -DskipTests (into a throwaway local repository; ${SECONDS}s)"
(cd "$root/clients/kotlin" && timeout 600 "$mvn" -q -B -Dstyle.color=never install -DskipTests "-Dmaven.repo.local=$repo")
ls "$repo/io/github/govss/vss-client/0.1.0/"

if [[ -d "$normal" ]]; then
	# Keep what Maven downloaded for the next run; the client itself stays out.
	(cd "$repo" && find . -path ./io/github/govss -prune -o -type f ! -name '*.lastUpdated' -print0 |
		xargs -0 -r cp -n --parents -t "$normal" 2>/dev/null) || true
fi

echo "== a fresh project against io.github.govss:vss-client:0.1.0 (${SECONDS}s)"
mkdir "$tmp/app"
cp -r "$here/pom.xml" "$here/src" "$tmp/app/"
cd "$tmp/app"
start_server
start_lnurl_server
timeout 300 "$mvn" -q -B -Dstyle.color=never -o "-Dmaven.repo.local=$repo" compile exec:exec
echo "done (${SECONDS}s)"
