package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/govss/vss/server"
)

// DefaultLeeway is the clock skew allowed when checking exp, nbf and iat, when
// JWTConfig does not say.
const DefaultLeeway = 30 * time.Second

// MaxTokenBytes caps the size of a bearer token; larger ones are rejected before they
// are parsed. Real tokens are well under 2 KiB.
const MaxTokenBytes = 8 << 10

// JWTConfig configures the JWT authorizer. At least one key must come from Keys,
// JWKSFile or JWKSURL; all of them may be used together.
type JWTConfig struct {
	// Keys are trusted public keys, for example from ParsePublicKeys: RSA keys of at
	// least MinRSABits bits verify RS256 only, EC P-256 keys ES256 only, Ed25519 keys
	// EdDSA only. A private key stands for its public key.
	Keys []crypto.PublicKey
	// ProvingKeys are the keys of issuers that put a public key in sub only after its
	// holder proved it, such as this server's LNURL-auth issuer, by the kid their tokens
	// name. A token that names one of these kids is verified by that key only, and its
	// sub counts as proven (see Combine). Tokens without such a kid never reach them.
	ProvingKeys map[string]crypto.PublicKey
	// KeySubjectsProven declares that every issuer of Keys and the JWKS sources, too,
	// puts a public key in sub only after its holder proved it, so that every subject
	// counts as proven (see Combine).
	KeySubjectsProven bool
	// JWKSFile, if set, is a JSON Web Key Set file. Like JWKSURL it is read at start,
	// every JWKSRefresh, and in the background when a token names a kid no JWKS key has
	// (at most once every 10 seconds, or once per JWKSRefresh if that is shorter); such
	// a token is refused until a refresh has brought its key. A failed refresh keeps the
	// previous keys.
	JWKSFile string
	// JWKSURL, if set, is an http or https URL serving a JSON Web Key Set (at most
	// 1 MiB), read as JWKSFile is.
	JWKSURL string
	// Leeway is the clock skew allowed when checking exp, nbf and iat: zero means
	// DefaultLeeway, a negative value means none.
	Leeway time.Duration
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time

	// JWKSRefresh is how often JWKS sources are read again; zero means
	// DefaultJWKSRefresh.
	JWKSRefresh time.Duration
	// HTTPClient fetches JWKSURL; nil means a client with the default transport. Each
	// fetch is limited to 10 seconds.
	HTTPClient *http.Client
	// Issuer, if set, is the only iss claim accepted (and iss becomes required).
	Issuer string
	// Audience, if set, must be one of the token's aud values (and aud becomes
	// required). Set it when the keys also sign tokens meant for other services.
	Audience string
	// Logger receives warnings about JWKS keys that are skipped or cannot be refreshed;
	// nil means slog.Default().
	Logger *slog.Logger
}

// JWT is the bearer-token authorizer returned by NewJWT.
type JWT struct {
	parser  *jwt.Parser
	static  []verifierKey
	proving []verifierKey // from ProvingKeys, with their kids
	// allProven is KeySubjectsProven.
	allProven bool
	jwks      *jwks // nil without JWKSFile and JWKSURL
}

// NewJWT returns an authorizer for "Authorization: Bearer <JWT>" whose user identity is
// the token's sub claim. The algorithm is pinned by the key type (see JWTConfig.Keys):
// none, HMAC and every other algorithm are refused. exp is required; exp, nbf and iat
// are checked with the leeway; sub must be a non-empty string of at most
// server.MaxUserLength characters without control characters.
//
// When the token has a kid that names a proving key or a JWKS key of the token's
// algorithm, only that key is tried; otherwise every key of Keys and the JWKS of the
// algorithm is.
//
// With a JWKS source, NewJWT reads it before returning (an unreadable source or one with
// no usable key is an error) and refreshes it in a goroutine that ends when ctx does.
// Authorize never waits for a refresh.
func NewJWT(ctx context.Context, cfg JWTConfig) (*JWT, error) {
	j := &JWT{allProven: cfg.KeySubjectsProven}
	for i, k := range cfg.Keys {
		alg, pub, err := verificationKey(k)
		if err != nil {
			return nil, fmt.Errorf("JWT key %d: %w", i+1, err)
		}
		j.static = append(j.static, verifierKey{alg: alg, key: pub})
	}
	for kid, k := range cfg.ProvingKeys {
		alg, pub, err := verificationKey(k)
		if err != nil {
			return nil, fmt.Errorf("JWT proving key %q: %w", kid, err)
		}
		if kid == "" {
			return nil, errors.New("JWT proving keys need a kid")
		}
		j.proving = append(j.proving, verifierKey{kid: kid, alg: alg, key: pub})
	}

	var sources []jwksSource
	if cfg.JWKSFile != "" {
		sources = append(sources, fileSource(cfg.JWKSFile))
	}
	if cfg.JWKSURL != "" {
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{}
		}
		src, err := urlSource(cfg.JWKSURL, client)
		if err != nil {
			return nil, err
		}
		sources = append(sources, src)
	}
	if len(sources) == 0 && len(j.static) == 0 && len(j.proving) == 0 {
		return nil, errors.New("no JWT verification key configured: give keys, a JWKS file or a JWKS URL")
	}
	if len(sources) > 0 {
		interval := cfg.JWKSRefresh
		if interval <= 0 {
			interval = DefaultJWKSRefresh
		}
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		var err error
		if j.jwks, err = newJWKS(ctx, sources, interval, log); err != nil {
			return nil, err
		}
	}

	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(acceptedAlgs()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	j.parser = jwt.NewParser(opts...)
	return j, nil
}

// Errors the key lookup reports, translated by tokenError.
var (
	errNoKeyForAlg = errors.New("no key for the algorithm")
	errCritical    = errors.New("critical header")
)

// lookup records what the key lookup of one Authorize call saw.
type lookup struct {
	kidUnknown bool // the token names a kid that no JWKS or proving key has
	proving    bool // only a proving key was offered to verify the token
}

// Authorize checks the request's bearer token and returns its sub claim.
func (j *JWT) Authorize(ctx context.Context, header http.Header) (string, error) {
	sub, _, err := j.authorizeSubject(ctx, header)
	return sub, err
}

// provesKeys reports whether some of j's tokens come from an issuer that proves key
// subjects (ProvingKeys), so that public keys are identities of their own here.
func (j *JWT) provesKeys() bool { return len(j.proving) > 0 }

// authorizeSubject is Authorize, and also reports whether the subject is proven: the
// token was verified by a proving key, or every issuer is declared to prove keys.
func (j *JWT) authorizeSubject(_ context.Context, header http.Header) (sub string, proven bool, err error) {
	value, ok, err := authorization(header)
	if err != nil {
		return "", false, err
	}
	if !ok {
		return "", false, server.AuthError("missing bearer token: send Authorization: Bearer <JWT>")
	}
	scheme, token := splitScheme(value)
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, server.AuthError("the Authorization header must use the Bearer scheme: send Authorization: Bearer <JWT>")
	}
	if token == "" {
		return "", false, server.AuthError("missing bearer token: the Authorization header has the Bearer scheme but no token")
	}
	if len(token) > MaxTokenBytes {
		return "", false, server.AuthError("bearer token is larger than " + strconv.Itoa(MaxTokenBytes) + " bytes")
	}

	var l lookup
	claims := &jwt.RegisteredClaims{}
	tok, err := j.parser.ParseWithClaims(token, claims, j.keyfunc(&l))
	if err != nil {
		if l.kidUnknown && j.jwks != nil && (errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, errNoKeyForAlg)) {
			// The token may be signed by a key published since the last refresh: fetch
			// in the background, and refuse this token now rather than keep it waiting.
			j.jwks.unknownKID()
			return "", false, server.AuthError("JWT names a key (kid) this server does not know; its key set is being " +
				"refreshed in the background: retry in a few seconds")
		}
		return "", false, tokenError(err, tok, claims)
	}

	sub = claims.Subject
	switch {
	case sub == "":
		return "", false, server.AuthError("JWT has no sub claim: the subject names the user")
	case utf8.RuneCountInString(sub) > server.MaxUserLength:
		return "", false, server.AuthError("JWT sub claim is longer than " + strconv.Itoa(server.MaxUserLength) + " characters")
	case strings.ContainsFunc(sub, unicode.IsControl):
		return "", false, server.AuthError("JWT sub claim contains control characters")
	}
	return sub, l.proving || j.allProven, nil
}

// keyfunc returns the jwt.Keyfunc of one Authorize call: the keys pinned to the token's
// algorithm, narrowed to the JWKS key its kid names when there is one.
func (j *JWT) keyfunc(l *lookup) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritical
		}
		alg := t.Method.Alg()
		kid, _ := t.Header["kid"].(string)
		if kid != "" {
			for _, k := range j.proving {
				if k.kid == kid && k.alg == alg {
					l.proving = true
					return k.key, nil
				}
			}
		}
		var fetched []verifierKey
		if j.jwks != nil {
			fetched = j.jwks.snapshot().keys
			if kid != "" {
				var named []jwt.VerificationKey
				known := false
				for _, k := range fetched {
					if k.kid == kid {
						known = true
						if k.alg == alg {
							named = append(named, k.key)
						}
					}
				}
				if len(named) > 0 {
					return jwt.VerificationKeySet{Keys: named}, nil
				}
				l.kidUnknown = !known
			}
		}
		var keys []jwt.VerificationKey
		for _, set := range [][]verifierKey{j.static, fetched} {
			for _, k := range set {
				if k.alg == alg {
					keys = append(keys, k.key)
				}
			}
		}
		if len(keys) == 0 {
			return nil, errNoKeyForAlg
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

// tokenError turns a parse failure into the AuthError the client sees.
func tokenError(err error, tok *jwt.Token, claims *jwt.RegisteredClaims) error {
	alg := ""
	if tok != nil {
		alg, _ = tok.Header["alg"].(string)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return server.AuthError("malformed bearer token: not a signed JWT (header.claims.signature in base64url JSON)")
	case tok != nil && alg == "":
		return server.AuthError("malformed bearer token: the JWT header has no alg")
	case tok != nil && !isAccepted(alg):
		return server.AuthError("unsupported JWT algorithm " + server.QuoteInput(alg) + ": this server accepts RS256, ES256 and EdDSA")
	case errors.Is(err, errNoKeyForAlg):
		return server.AuthError("unexpected JWT algorithm " + alg + ": no key of that type is configured on this server")
	case errors.Is(err, errCritical):
		return server.AuthError("JWT has critical header parameters (crit) this server does not support")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return server.AuthError("JWT signature is invalid: the token is not signed by a key this server trusts")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && claims.ExpiresAt == nil:
		return server.AuthError("JWT has no exp claim: an expiry time is required")
	case errors.Is(err, jwt.ErrTokenExpired):
		return server.AuthError("JWT has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return server.AuthError("JWT is not valid yet: its nbf claim is in the future")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return server.AuthError("JWT is not valid yet: its iat (issued at) claim is in the future")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && claims.Issuer == "":
		return server.AuthError("JWT has no iss claim: this server requires its issuer")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return server.AuthError("JWT has no aud claim: this server requires its audience")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return server.AuthError("JWT issuer (iss) is not the one this server accepts")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return server.AuthError("JWT audience (aud) does not include this server")
	default:
		return server.AuthError("invalid bearer token")
	}
}

// isAccepted reports whether alg is one of the algorithms of acceptedAlgs.
func isAccepted(alg string) bool {
	return alg == algRS256 || alg == algES256 || alg == algEdDSA
}
