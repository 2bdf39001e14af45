#!/usr/bin/env bash
# The Kotlin client's side of the cross-language encryption test
# (compat/rust-client/encryption.sh, make test-encryption-compat):
#   compat/encryption/kotlin.sh write <store-id prefix>   writes the vectors file's fixture
#   compat/encryption/kotlin.sh read  <store-id prefix>   checks what a writer wrote there
# with VSS_BASE_URL (the server, run with --auth none) and VSS_ENCRYPTION_VECTORS (the vectors
# file) set. The program is clients/kotlin/src/test/kotlin/.../EncryptionCompat.kt, using
# EncryptedStore and LdkStore of the client. It runs with plain java on the classpath the
# Maven build writes to target/test-classpath.txt; the first call builds the module (without
# running its tests) when that file is missing, older than a source, or names a jar that is
# gone (a build with another local repository wrote it); the others reuse it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
module="$root/clients/kotlin"
if [[ $# -ne 2 || ( "$1" != write && "$1" != read ) ]]; then
	echo "usage: $0 write|read <store-id prefix>" >&2
	exit 2
fi
: "${VSS_BASE_URL:?VSS_BASE_URL is not set}"
: "${VSS_ENCRYPTION_VECTORS:?VSS_ENCRYPTION_VECTORS is not set}"

classpath="$module/target/test-classpath.txt"
# fresh: the classpath file exists, no source is newer, and every entry it names exists.
fresh() {
	[[ -f "$classpath" ]] || return 1
	[[ -z "$(find "$module/src" "$module/pom.xml" "$root/proto" -newer "$classpath" -print -quit)" ]] || return 1
	local entry entries
	IFS=: read -r -a entries <"$classpath"
	for entry in "${entries[@]}"; do
		[[ -e "$entry" ]] || return 1
	done
}
if ! fresh; then
	make -s -C "$root" kotlin-tools >&2
	# Maven's output only on failure: its quiet mode still writes colour codes to stdout.
	if ! log="$(cd "$module" && "${MVN:-mvn}" -q -B -Dstyle.color=never process-test-classes 2>&1)"; then
		printf '%s\n' "$log" >&2
		exit 1
	fi
fi
java="java"
if [[ -n "${JAVA_HOME:-}" ]]; then
	java="$JAVA_HOME/bin/java"
fi
exec "$java" -cp "$(cat "$classpath")" io.github.govss.vss.EncryptionCompat "$1" "$2"
