#!/usr/bin/env bash
# The Go client's side of the cross-language encryption test (make test-encryption-compat):
#   compat/encryption/go.sh write <store-id-prefix>   writes the vectors file's fixture
#   compat/encryption/go.sh read  <store-id-prefix>   checks what a writer wrote under that prefix
# with VSS_BASE_URL (the server's root URL) and VSS_ENCRYPTION_VECTORS (the vectors file) set.
# The program is compat/encryption/go (package client/encrypted), built into bin/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/bin/encryption-compat-go"
# go build is a no-op when nothing changed; several readers may call this at once, so each
# builds to its own file and renames it into place.
tmp="$(mktemp "$root/bin/.encryption-compat-go.XXXXXX" 2>/dev/null || { mkdir -p "$root/bin"; mktemp "$root/bin/.encryption-compat-go.XXXXXX"; })"
(cd "$root" && go build -o "$tmp" ./compat/encryption/go) || { rm -f "$tmp"; exit 1; }
mv -f "$tmp" "$bin"
exec "$bin" "$@"
