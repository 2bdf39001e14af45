package auth

import (
	"context"
	"net/http"

	"github.com/govss/vss/server"
)

// keySubjects is implemented by bearer authorizers that can tell whether a token's
// subject is a public key its holder proved to the issuer (JWT does).
type keySubjects interface {
	// authorizeSubject is Authorize, and also reports whether the subject is proven.
	authorizeSubject(ctx context.Context, header http.Header) (user string, proven bool, err error)
	// provesKeys reports whether some tokens come from an issuer that proves keys.
	provesKeys() bool
}

// Combine returns an Authorizer that runs two schemes side by side: requests whose
// Authorization header uses the Bearer scheme go to bearer, all others (including
// requests without the header) go to other.
//
// A nil bearer rejects every bearer token; a nil other rejects every request that has no
// bearer token, telling the client that one is required.
//
// Identities never cross schemes. A user identity shaped like a compressed secp256k1
// public key in lowercase hex (see isKeyIdentity) belongs to whoever proved they hold
// that key: the signature scheme proves it with every request, and an issuer such as
// this server's LNURL-auth issuer (JWTConfig.ProvingKeys) proves it before it signs a
// token. So whenever this server proves keys (other is set, or bearer has proving
// keys), a bearer token whose subject has that shape is refused unless its subject is
// proven (JWTConfig.KeySubjectsProven declares every issuer's subjects proven).
// Otherwise an identity provider's user could pick another user's public key as sub
// and reach that user's data. Identities of other shapes pass unchanged, and so does
// every identity when only one scheme runs and no key is proven: databases of the
// reference server, whose JWT users are their raw sub, keep working.
func Combine(bearer, other server.Authorizer) server.Authorizer {
	keyed, _ := bearer.(keySubjects)
	reserved := other != nil || (keyed != nil && keyed.provesKeys())
	return server.AuthorizerFunc(func(ctx context.Context, header http.Header) (string, error) {
		if !isBearer(header.Get(authorizationHeader)) {
			if other == nil {
				return "", server.AuthError("this server requires a bearer token: send Authorization: Bearer <JWT>")
			}
			return other.Authorize(ctx, header)
		}
		switch {
		case bearer == nil:
			return "", server.AuthError("bearer tokens are not accepted by this server")
		case !reserved:
			return bearer.Authorize(ctx, header)
		}
		var user string
		var proven bool
		var err error
		if keyed != nil {
			user, proven, err = keyed.authorizeSubject(ctx, header)
		} else {
			user, err = bearer.Authorize(ctx, header)
		}
		if err == nil && !proven && isKeyIdentity(user) {
			return "", server.AuthError("JWT sub claim has the form of a secp256k1 public key, which on this server " +
				"names the user who proves holding that key; this token's issuer is not trusted to prove it")
		}
		return user, err
	})
}

// isKeyIdentity reports whether user has the shape of the identities the signature
// scheme yields: a compressed secp256k1 public key in lowercase hex (66 digits starting
// with 02 or 03). Whether it is a point on the curve does not matter: the shape is
// reserved whole, which is simpler to state and to check.
func isKeyIdentity(user string) bool {
	if len(user) != 66 || user[0] != '0' || (user[1] != '2' && user[1] != '3') {
		return false
	}
	for i := 2; i < len(user); i++ {
		if c := user[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
