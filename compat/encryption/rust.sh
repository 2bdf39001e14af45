#!/usr/bin/env bash
# The Rust side of the cross-language encryption test: the real vss-client-ng 0.6.0 (VssClient,
# StorableBuilder, KeyObfuscator) with LDK Node's layout, compat/rust-client/src/bin/encryption.
# Usage: rust.sh write|read <store-id-prefix>
# Environment: VSS_BASE_URL (http://127.0.0.1:PORT; the VSS HTTP API is $VSS_BASE_URL/vss) and
# VSS_ENCRYPTION_VECTORS (compat/rust-client/encryption-vectors.json). See ENCRYPTION-VECTORS.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CARGO_TARGET_DIR="$root/compat/rust-client/target"
exec cargo run --quiet --manifest-path "$root/compat/rust-client/Cargo.toml" --bin encryption -- "$@"
