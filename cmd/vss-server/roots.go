package main

// The container image holds no certificate bundle: where the system has none, TLS to
// PostgreSQL (VSS_PSQL_TLS, sslmode=verify-full) and to a JWKS endpoint verifies against
// the Mozilla roots this package embeds. A system bundle, where there is one, is used
// instead.
import _ "golang.org/x/crypto/x509roots/fallback"
