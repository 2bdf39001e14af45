#!/usr/bin/env bash
# The TypeScript client's part of the cross-language encryption test
# (compat/rust-client/encryption.sh, make test-encryption-compat):
#   compat/encryption/ts.sh write <store-id prefix>   write the vectors' fixture
#   compat/encryption/ts.sh read <store-id prefix>    check what a writer wrote there
# with VSS_BASE_URL (the server, no authentication) and VSS_ENCRYPTION_VECTORS (the vectors
# file) set. The program is clients/ts/test/compat-encryption.ts, built with the package
# (npm ci on first use), using EncryptedStore and LdkStore of @govss/vss-client.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ $# -ne 2 || ( "$1" != write && "$1" != read ) ]]; then
	echo "usage: $0 write|read <store-id prefix>" >&2
	exit 2
fi
: "${VSS_BASE_URL:?VSS_BASE_URL is not set}"

# Build once per run of the whole test: the first call builds, the others find it fresh.
make -s -C "$root" clients/ts/node_modules >&2
program="$root/clients/ts/build-test/compat-encryption.js"
if [[ ! -f "$program" ]] || [[ -n "$(find "$root/clients/ts/src" "$root/clients/ts/test" -newer "$program" -print -quit)" ]]; then
	(cd "$root/clients/ts" && npm run --silent pretest) >&2
fi
exec node "$program" "$1" "$2"
