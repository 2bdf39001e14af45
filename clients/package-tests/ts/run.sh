#!/usr/bin/env bash
# Proves the TypeScript package from the outside: packs clients/ts with npm pack, checks
# the tarball's files, installs it into two fresh projects beside public packages only
# (this directory's package.json, no lock file: what a new user has), checks that npm installed
# one copy of @bufbuild/protobuf and of @connectrpc/connect, type-checks a program that
# uses every entry point with tsc --strict (Node resolution, and a bundler's for the
# browser part), and runs it against real vss-servers on loopback: one with signature
# authentication, one with the LNURL-auth issuer (--auth signature,jwt --lnurl-auth). The
# program also writes and reads through the encrypted store and the LDK layout, and catches
# a tampered value, so the published artifact's encryption is proven too.
# Usage: bash clients/package-tests/ts/run.sh   (after make build; VSS_SERVER_BIN overrides)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
# shellcheck source=../server.sh
source "$here/../server.sh"

failed=0
tmp="$(mktemp -d "${TMPDIR:-/tmp}/vss-ts-package.XXXXXX")"
trap 'stop_server; stop_lnurl_server; rm -rf "$tmp" "$vss_server_log" "$lnurl_server_log"' EXIT

echo "== npm pack"
tarball="$(cd "$root/clients/ts" && npm pack --silent --pack-destination "$tmp" | tail -1)"
tarball="$tmp/$tarball"
echo "$tarball"

got="$(tar -tzf "$tarball" | LC_ALL=C sort | tr '\n' ' ')"
want=""
for f in LICENSE LICENSE-APACHE LICENSE-MIT README.md \
	dist/auth.d.ts dist/auth.js dist/backoff.d.ts dist/backoff.js dist/client.d.ts dist/client.js \
	dist/dump.d.ts dist/dump.js \
	dist/encrypted-store.d.ts dist/encrypted-store.js dist/encryption.d.ts dist/encryption.js \
	dist/errors.d.ts dist/errors.js dist/feed.d.ts dist/feed.js \
	dist/gen/vss/dump/v1/dump_pb.d.ts dist/gen/vss/dump/v1/dump_pb.js \
	dist/gen/vss/v1/vss_pb.d.ts dist/gen/vss/v1/vss_pb.js \
	dist/index.d.ts dist/index.js dist/keys.d.ts dist/keys.js dist/ldk.d.ts dist/ldk.js \
	dist/lease.d.ts dist/lease.js dist/lnurl.d.ts dist/lnurl.js dist/node.d.ts dist/node.js \
	dist/retry.d.ts dist/retry.js dist/web.d.ts dist/web.js \
	package.json; do
	want="$want""package/$f "
done
if [[ "$got" != "$want" ]]; then
	echo "the tarball holds: $got" >&2
	echo "want:              $want" >&2
	failed=1
else
	echo "tarball files: ok"
fi
for f in LICENSE LICENSE-APACHE LICENSE-MIT; do
	if ! tar -xzf "$tarball" -O "package/$f" | cmp -s - "$root/$f"; then
		echo "package/$f differs from the repository's $f" >&2
		failed=1
	fi
done

# fresh_project installs the tarball into a new project made of this directory's files,
# with the versions of public packages it is given, type-checks the program and runs it.
fresh_project() {
	local name="$1"
	shift
	echo "== a fresh project ($name): npm install the tarball"
	mkdir "$tmp/$name"
	cp -r "$here/package.json" "$here/tsconfig.json" "$here/tsconfig.bundler.json" "$here/src" "$tmp/$name/"
	cd "$tmp/$name"
	if [[ $# -gt 0 ]]; then
		npm pkg set "$@"
	fi
	timeout 300 npm install --no-audit --no-fund --prefer-offline "$tarball"

	for pkg in @bufbuild/protobuf @connectrpc/connect; do
		copies="$(find . -path "*/node_modules/$pkg/package.json" | LC_ALL=C sort)"
		if [[ "$(grep -c . <<<"$copies")" != 1 ]]; then
			echo "want one copy of $pkg, npm installed:" >&2
			echo "$copies" >&2
			failed=1
		else
			echo "one copy of $pkg: ok"
		fi
	done

	echo "== tsc --strict ($name)"
	if ! timeout 300 ./node_modules/.bin/tsc --strict -p tsconfig.json ||
		! timeout 300 ./node_modules/.bin/tsc --strict -p tsconfig.bundler.json; then
		echo "the program does not type-check against the installed package" >&2
		exit 1
	fi

	echo "== the program against vss-server ($name)"
	timeout 120 node build/node-app.js
}

start_server
start_lnurl_server
# The oldest Connect the package accepts, beside the newest Protobuf-ES: where a package
# that pinned its own @bufbuild/protobuf got a second copy, and no client call type-checked.
fresh_project oldest-connect \
	dependencies.@connectrpc/connect=2.1.2 \
	dependencies.@connectrpc/connect-node=2.1.2 \
	dependencies.@connectrpc/connect-web=2.1.2
# Today's releases of Connect and Protobuf-ES, which package.json pins.
fresh_project newest
exit "$failed"
