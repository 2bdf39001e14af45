// Package auth implements the authentication schemes VSS clients use today, as
// server.Authorizer values:
//
//   - NewSignature: the reference server's default. The Authorization header carries a
//     compressed secp256k1 public key, a compact ECDSA signature and the signing time;
//     the user is the public key.
//   - NewJWT: "Authorization: Bearer <JWT>", signed by a configured RSA (RS256), P-256
//     (ES256) or Ed25519 (EdDSA) key, or by a key of a JSON Web Key Set read from a file
//     or a URL and refreshed in the background; the user is the token's sub claim.
//   - Combine runs a bearer-token scheme and another scheme side by side, and keeps
//     their identities apart.
//
// Every rejection is a server.AuthError whose message says what is wrong with the
// credentials, so that it reaches the client as AUTH_EXCEPTION; no message contains key
// material or the client's credentials.
package auth

import (
	"net/http"
	"strings"

	"github.com/govss/vss/server"
)

// authorizationHeader is the header every scheme of this package reads.
const authorizationHeader = "Authorization"

// authorization returns the single Authorization header of a request. ok is false when
// it is missing or empty; err is set when the request has more than one.
func authorization(header http.Header) (value string, ok bool, err error) {
	values := header.Values(authorizationHeader)
	switch {
	case len(values) > 1:
		return "", false, server.AuthError("the request has more than one Authorization header; send exactly one")
	case len(values) == 0 || values[0] == "":
		return "", false, nil
	}
	return values[0], true, nil
}

// splitScheme splits an Authorization header value into its scheme word and the
// credentials after it (RFC 9110 section 11.4: the scheme, then one or more spaces).
func splitScheme(value string) (scheme, credentials string) {
	scheme, credentials, _ = strings.Cut(value, " ")
	return scheme, strings.Trim(credentials, " \t")
}

// isBearer reports whether an Authorization header value uses the Bearer scheme, whose
// name is case-insensitive (RFC 6750 section 2.1, RFC 9110 section 11.1).
func isBearer(value string) bool {
	scheme, _ := splitScheme(value)
	return strings.EqualFold(scheme, "Bearer")
}
