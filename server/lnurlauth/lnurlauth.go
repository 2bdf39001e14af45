// Package lnurlauth is the server's built-in LNURL-auth (LUD-04) issuer of JWTs. A
// wallet proves that it holds a secp256k1 linking key by signing a one-time challenge,
// and receives an ES256 JWT whose sub is that key; it then calls the VSS API with
// "Authorization: Bearer <JWT>". The exchange is the one vss-client-ng's
// LnurlAuthToJwtProvider performs:
//
//  1. GET /auth/lnurl answers, as plain text, the LNURL
//     <PublicURL>/auth/lnurl/verify?tag=login&k1=<64 hex digits>.
//  2. The wallet derives its LUD-05 linking key for the LNURL's domain, signs the 32
//     bytes of k1 (as the message digest, ECDSA over secp256k1), and calls the LNURL with
//     &sig=<DER signature, hex>&key=<compressed public key, hex> appended.
//  3. GET /auth/lnurl/verify answers {"status":"OK","token":"<JWT>"}, or
//     {"status":"ERROR","reason":"..."} with the status codes below.
//
// The JWT is signed with an ES256 (ECDSA P-256) key that the issuer keeps in the
// storage.AuthStore, so every server instance on one database signs with the same key
// and a restart keeps it. Its claims are sub (the linking key, 66 lowercase hex
// digits), iss (PublicURL), iat and exp (iat + TokenTTL; always set, since the client
// keeps a token without exp forever); its header names the key in kid.
//
// A challenge costs nothing until it is answered: k1 is 32 bytes, the challenge's expiry
// as 8-byte big-endian Unix seconds, 8 random bytes, and the first 16 bytes of
// HMAC-SHA256 over those 16 bytes under a secret shared through the AuthStore. Issuing
// one writes nothing, so the unauthenticated GET /auth/lnurl cannot fill the database,
// and any instance can check a k1 that another one issued. An answered k1 is recorded in
// the AuthStore until after its expiry, so it is accepted once across all instances.
//
// Status codes of GET /auth/lnurl/verify (every answer is JSON with Cache-Control:
// no-store; reasons never carry internal details):
//
//   - 200 OK: a token was issued.
//   - 400 Bad Request: a parameter is missing, repeated or malformed: tag (must be
//     "login"), k1 (64 hex digits), sig (hex of a strict DER signature with a low S, as
//     libsecp256k1 makes), key (hex of a 33-byte compressed public key), or the query
//     string itself.
//   - 403 Forbidden: the request is well formed but the proof is refused: the signature
//     does not verify k1 under key, k1 was not issued by this server, it expired, or it
//     was answered already. The wallet must fetch a new LNURL. (Not 401: there is no
//     HTTP authentication scheme to challenge with.)
//   - 500 Internal Server Error: the token could not be issued; the cause is logged.
//   - 503 Service Unavailable: the database cannot be reached; the wallet may retry with
//     a new LNURL.
package lnurlauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
)

// Paths the issuer serves, relative to PublicURL.
const (
	// LNURLPath answers a new LNURL as plain text.
	LNURLPath = "/auth/lnurl"
	// VerifyPath is the LNURL's path: it checks a signed challenge and answers a JWT.
	VerifyPath = "/auth/lnurl/verify"
)

// Defaults and bounds of Config.
const (
	// DefaultTokenTTL is how long an issued JWT is valid when Config.TokenTTL is zero.
	DefaultTokenTTL = 24 * time.Hour
	// DefaultChallengeTTL is how long a challenge may be answered when
	// Config.ChallengeTTL is zero.
	DefaultChallengeTTL = 5 * time.Minute
	// MinTokenTTL is the shortest TokenTTL accepted: vss-client-ng fetches a new token
	// 60 seconds before exp, so a shorter life would have it log in for every request.
	MinTokenTTL = 2 * time.Minute
	// MinChallengeTTL is the shortest ChallengeTTL accepted; k1 counts in seconds.
	MinChallengeTTL = time.Second
)

// Names of the issuer's secrets in the AuthStore.
const (
	signingKeyName = "lnurl-auth/jwt-signing-key/es256"
	macKeyName     = "lnurl-auth/challenge-mac-key"
)

// macKeyLen is the length of the generated challenge MAC key, and the least accepted.
const macKeyLen = 32

// replayMargin is how long past its expiry an answered challenge stays recorded. The
// store may forget it by the database's clock while this server still accepts it by
// its own; the margin absorbs the difference between the two clocks.
const replayMargin = 5 * time.Minute

// Config configures New.
type Config struct {
	// PublicURL is the server's public base URL, such as https://vss.example.com
	// (without a trailing slash, query or fragment); the LNURL is PublicURL +
	// VerifyPath, and wallets derive their linking key from its host. It is the iss of
	// issued tokens. Required.
	PublicURL string
	// Store keeps the issuer's signing key, its challenge MAC key, and the challenges
	// answered. Required.
	Store storage.AuthStore
	// TokenTTL is how long an issued JWT is valid; zero means DefaultTokenTTL. It is at
	// least MinTokenTTL.
	TokenTTL time.Duration
	// ChallengeTTL is how long a challenge may be answered; zero means
	// DefaultChallengeTTL. It is at least MinChallengeTTL.
	ChallengeTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refusals (at debug level) and failures (at error level), with the
	// request id; nil discards them.
	Logger *slog.Logger
}

// Issuer serves LNURL-auth and issues JWTs. It is safe for concurrent use.
type Issuer struct {
	publicURL    string
	verifyURL    string
	store        storage.AuthStore
	tokenTTL     time.Duration
	challengeTTL time.Duration
	now          func() time.Time
	log          *slog.Logger
	signingKey   *ecdsa.PrivateKey
	keyID        string
	macKey       []byte
}

// New returns an Issuer configured by cfg. It loads the signing key and the challenge
// MAC key from cfg.Store, creating them on a database that has none yet; servers that
// start together on one database end up with the same keys.
func New(ctx context.Context, cfg Config) (*Issuer, error) {
	if cfg.Store == nil {
		return nil, errors.New("lnurlauth: Config.Store is required")
	}
	publicURL, u, err := checkPublicURL(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	tokenTTL := cfg.TokenTTL
	switch {
	case tokenTTL == 0:
		tokenTTL = DefaultTokenTTL
	case tokenTTL < MinTokenTTL:
		return nil, fmt.Errorf("lnurlauth: token lifetime %v is shorter than %v", tokenTTL, MinTokenTTL)
	}
	challengeTTL := cfg.ChallengeTTL
	switch {
	case challengeTTL == 0:
		challengeTTL = DefaultChallengeTTL
	case challengeTTL < MinChallengeTTL:
		return nil, fmt.Errorf("lnurlauth: challenge lifetime %v is shorter than %v", challengeTTL, MinChallengeTTL)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	keyData, err := cfg.Store.Secret(ctx, signingKeyName, generateSigningKey)
	if err != nil {
		return nil, fmt.Errorf("lnurlauth: load the signing key: %w", err)
	}
	signingKey, err := parseSigningKey(keyData)
	if err != nil {
		return nil, fmt.Errorf("lnurlauth: stored signing key %q: %w", signingKeyName, err)
	}
	keyID, err := thumbprint(&signingKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("lnurlauth: signing key: %w", err)
	}
	macKey, err := cfg.Store.Secret(ctx, macKeyName, func() ([]byte, error) {
		b := make([]byte, macKeyLen)
		_, _ = rand.Read(b) // never fails
		return b, nil
	})
	if err != nil {
		return nil, fmt.Errorf("lnurlauth: load the challenge key: %w", err)
	}
	if len(macKey) < macKeyLen {
		return nil, fmt.Errorf("lnurlauth: stored challenge key %q has %d bytes, want at least %d", macKeyName, len(macKey), macKeyLen)
	}

	if net.ParseIP(u.Hostname()) != nil {
		log.WarnContext(ctx, "the LNURL-auth public URL names an IP address: vss-client-ng derives linking keys "+
			"from a domain name and refuses such an LNURL", "public_url", publicURL)
	}
	return &Issuer{
		publicURL:    publicURL,
		verifyURL:    publicURL + VerifyPath,
		store:        cfg.Store,
		tokenTTL:     tokenTTL,
		challengeTTL: challengeTTL,
		now:          now,
		log:          log,
		signingKey:   signingKey,
		keyID:        keyID,
		macKey:       macKey,
	}, nil
}

// checkPublicURL validates a public base URL and returns it without a trailing slash,
// with its parsed form.
func checkPublicURL(s string) (string, *url.URL, error) {
	s = strings.TrimSuffix(s, "/")
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "", nil, errors.New("lnurlauth: Config.PublicURL is required")
	case err != nil:
		return "", nil, fmt.Errorf("lnurlauth: public URL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.Hostname() == "", u.Opaque != "":
		return "", nil, fmt.Errorf("lnurlauth: public URL %q must be an absolute http or https URL with a host", s)
	case u.User != nil, u.RawQuery != "", u.ForceQuery, u.Fragment != "", u.RawFragment != "":
		return "", nil, fmt.Errorf("lnurlauth: public URL %q must not have user information, a query or a fragment", s)
	}
	return s, u, nil
}

// PublicKey returns the public key that verifies the issued tokens (an
// *ecdsa.PublicKey on P-256, for ES256).
func (i *Issuer) PublicKey() crypto.PublicKey {
	return &i.signingKey.PublicKey
}

// KeyID returns the kid of the issued tokens: the RFC 7638 JWK thumbprint of the
// signing key (SHA-256, base64url without padding).
func (i *Issuer) KeyID() string {
	return i.keyID
}

// Routes registers GET LNURLPath and GET VerifyPath on mux.
func (i *Issuer) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LNURLPath, i.serveLNURL)
	mux.HandleFunc("GET "+VerifyPath, i.serveVerify)
}

// serveLNURL answers a new LNURL with a fresh challenge, as plain text.
func (i *Issuer) serveLNURL(w http.ResponseWriter, _ *http.Request) {
	k1 := i.newChallenge(i.now())
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(i.verifyURL + "?tag=login&k1=" + hex.EncodeToString(k1[:])))
}

// response is the JSON body of VerifyPath, as LUD-04 and vss-client-ng read it.
type response struct {
	Status string `json:"status"`
	Token  string `json:"token,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// serveVerify checks a signed challenge and answers a JWT or the reason for refusing.
func (i *Issuer) serveVerify(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, sub, err := i.verify(ctx, r.URL.RawQuery)
	var ref *refusal
	switch {
	case err == nil:
		i.log.DebugContext(ctx, "LNURL-auth token issued", "request_id", server.RequestID(ctx), "sub", sub)
		writeJSON(w, http.StatusOK, response{Status: "OK", Token: token})
	case errors.As(err, &ref):
		i.log.DebugContext(ctx, "LNURL-auth refused", "request_id", server.RequestID(ctx),
			"status", ref.status, "reason", ref.reason, "key", sub)
		writeJSON(w, ref.status, response{Status: "ERROR", Reason: ref.reason})
	case errors.Is(err, storage.ErrUnavailable):
		i.log.ErrorContext(ctx, "LNURL-auth failed", "request_id", server.RequestID(ctx), "err", err)
		writeJSON(w, http.StatusServiceUnavailable, response{Status: "ERROR", Reason: "service unavailable, try again"})
	default:
		i.log.ErrorContext(ctx, "LNURL-auth failed", "request_id", server.RequestID(ctx), "err", err)
		writeJSON(w, http.StatusInternalServerError, response{Status: "ERROR", Reason: "internal error"})
	}
}

// verify checks the signed challenge in rawQuery, records its use and returns a token
// for its key, with the key's hex (once known). A refused request is a *refusal; any
// other error is an internal failure.
func (i *Issuer) verify(ctx context.Context, rawQuery string) (token, sub string, err error) {
	p, err := parseProof(rawQuery)
	if err != nil {
		return "", "", err
	}
	sub = hex.EncodeToString(p.key.SerializeCompressed())
	now := i.now()
	expiry, err := i.openChallenge(p.k1, now)
	if err != nil {
		return "", sub, err
	}
	// The signature is checked before the challenge is spent, so whoever sees an LNURL
	// cannot spoil it for its wallet with a bad signature.
	if !p.sig.Verify(p.k1[:], p.key) {
		return "", sub, forbidden("invalid signature: sig does not sign k1 with key")
	}
	if err := i.store.UseChallenge(ctx, p.k1[:], expiry.Add(replayMargin)); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return "", sub, forbidden("challenge already used: fetch a new LNURL")
		}
		return "", sub, fmt.Errorf("record the challenge: %w", err)
	}
	token, err = i.issueToken(sub, now)
	if err != nil {
		return "", sub, fmt.Errorf("sign the token: %w", err)
	}
	return token, sub, nil
}

// issueToken returns a JWT for sub, issued at now (to the second).
func (i *Issuer) issueToken(sub string, now time.Time) (string, error) {
	iat := now.Truncate(time.Second)
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Issuer:    i.publicURL,
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(iat),
		ExpiresAt: jwt.NewNumericDate(iat.Add(i.tokenTTL)),
	})
	tok.Header["kid"] = i.keyID
	return tok.SignedString(i.signingKey)
}

// writeJSON sends v as a JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v response) {
	body, _ := json.Marshal(v) // three strings always marshal
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// refusal is a request the issuer refuses: its status and the reason sent to the client.
type refusal struct {
	status int
	reason string
}

// Error returns the reason.
func (r *refusal) Error() string { return r.reason }

// badRequest refuses a missing or malformed parameter.
func badRequest(reason string) error {
	return &refusal{status: http.StatusBadRequest, reason: reason}
}

// forbidden refuses a well-formed proof that does not hold.
func forbidden(reason string) error {
	return &refusal{status: http.StatusForbidden, reason: reason}
}
