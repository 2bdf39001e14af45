# Client-side encryption compatible with vss-client-ng and LDK Node: the shared known-answer
# vectors (compat/rust-client/encryption-vectors.json, made by the real crates) and the
# cross-language test (docs/encryption.md).

ENCRYPTION_CARGO = CARGO_TARGET_DIR=$(CURDIR)/compat/rust-client/target cargo

.PHONY: encryption-vectors
encryption-vectors: ## Regenerate compat/rust-client/encryption-vectors.json from vss-client-ng and LDK Node's derivation
	$(ENCRYPTION_CARGO) run --quiet --manifest-path compat/rust-client/Cargo.toml --bin encryption -- vectors \
		> compat/rust-client/encryption-vectors.json

.PHONY: check-encryption-vectors
check-encryption-vectors: ## Check that the committed encryption vectors are what the crates produce now
	$(ENCRYPTION_CARGO) run --quiet --manifest-path compat/rust-client/Cargo.toml --bin encryption -- vectors \
		| diff -u compat/rust-client/encryption-vectors.json - \
		|| { echo "compat/rust-client/encryption-vectors.json is stale: run make encryption-vectors"; exit 1; }

CLIENT_TESTS += check-encryption-vectors

.PHONY: test-encryption-compat
test-encryption-compat: ## Cross-language encryption test: Rust (vss-client-ng), Go, TypeScript and Kotlin each write the fixture and read every other's, against bin/vss-server; then vssctl migrate moves it all to a second server, where the Rust client reads it again
	bash compat/rust-client/encryption.sh

CLIENT_TESTS += test-encryption-compat
