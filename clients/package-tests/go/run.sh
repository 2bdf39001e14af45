#!/usr/bin/env bash
# Proves the Go client from the outside, doing what client/README.md says: a fresh module
# in a temporary directory (go mod init), a replace directive pointing
# github.com/govss/vss at this checkout, go mod tidy, then a program using the client
# (testdata/app/main.go) built and run against a real vss-server on loopback.
# Usage: bash clients/package-tests/go/run.sh   (after make build; VSS_SERVER_BIN overrides)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
# shellcheck source=../server.sh
source "$here/../server.sh"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vss-go-module.XXXXXX")"
trap 'stop_server; rm -rf "$tmp" "$vss_server_log"' EXIT

# A workspace file above the temporary directory must not change what the module sees.
export GOWORK=off
go="${GO:-go}"

echo "== a fresh module"
mkdir "$tmp/app"
cd "$tmp/app"
"$go" mod init example.com/app
cp "$here/testdata/app/main.go" .
"$go" mod edit -replace "github.com/govss/vss=$root"
timeout 300 "$go" mod tidy
cat go.mod
timeout 300 "$go" build -o app .

echo "== the program against vss-server"
start_server
timeout 120 ./app
