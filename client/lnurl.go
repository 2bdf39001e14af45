package vssclient

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// DefaultRefreshBefore is how long before its exp a cached LNURL-auth token is
// replaced when LNURLAuthConfig.RefreshBefore is zero: 60 seconds, as vss-client-ng.
const DefaultRefreshBefore = 60 * time.Second

// Limits on the issuer's answers.
const (
	maxLNURLBytes  = 4 << 10
	maxAnswerBytes = 64 << 10
)

// LNURLAuthConfig configures NewLNURLAuth.
type LNURLAuthConfig struct {
	// URL is the issuer's LNURL endpoint, such as https://vss.example.com/auth/lnurl
	// for a vss-server started with --lnurl-auth: a GET answers a LUD-04 login LNURL
	// (…?tag=login&k1=<64 hex digits>) as plain text. Required.
	URL string
	// LinkingKey signs the challenges; the server's user is its public key (the same
	// user as Signature with the same key). Required unless LinkingKeyFor is set.
	LinkingKey *secp256k1.PrivateKey
	// LinkingKeyFor, if set, returns the linking key for the domain of the LNURL the
	// issuer answered, for wallets that derive one key per domain (LUD-05, as
	// vss-client-ng does from its seed). It takes precedence over LinkingKey.
	LinkingKeyFor func(domain string) (*secp256k1.PrivateKey, error)
	// HTTPClient fetches the LNURL and the token; nil means http.DefaultClient.
	HTTPClient *http.Client
	// RefreshBefore is how long before the token's exp a new one is fetched; zero
	// means DefaultRefreshBefore.
	RefreshBefore time.Duration
	// Now is the clock that decides when the token is due; nil means time.Now.
	Now func() time.Time
}

// LNURLAuth is a HeaderProvider that logs in with LNURL-auth and sends the JWT it
// receives as "Authorization: Bearer <JWT>", the exchange vss-client-ng's
// LnurlAuthToJwtProvider makes:
//
//  1. GET the issuer's URL; it answers an LNURL …?tag=login&k1=<k1>.
//  2. Sign the 32 bytes of k1 with the linking key (ECDSA over secp256k1, DER encoded)
//     and GET the LNURL with &sig=<signature hex>&key=<compressed public key hex>.
//  3. The answer is JSON {"status":"OK","token":"<JWT>"}, or {"status":"ERROR",
//     "reason":"…"}.
//
// The token is cached and shared by all calls until RefreshBefore ahead of its exp
// claim (a token without exp is kept until the server refuses it); concurrent calls
// that find no valid token wait for a single login. When the server answers
// unauthenticated, the client drops the cached token (Invalidate), so the next attempt
// logs in again. Login failures the server may recover from (transport errors, 5xx)
// are reported as unavailable, so the client retries them; refusals as
// unauthenticated.
type LNURLAuth struct {
	cfg   LNURLAuthConfig
	login chan struct{} // a one-slot semaphore held by the login in progress

	mu     sync.Mutex
	token  string
	expiry time.Time // when the token is due for renewal; zero: never
}

// NewLNURLAuth returns an LNURL-auth header provider. It logs in on first use.
func NewLNURLAuth(cfg LNURLAuthConfig) (*LNURLAuth, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("vssclient: LNURL-auth URL %q is not an http or https URL", cfg.URL)
	}
	if cfg.LinkingKey == nil && cfg.LinkingKeyFor == nil {
		return nil, errors.New("vssclient: LNURL-auth needs a LinkingKey or LinkingKeyFor")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = DefaultRefreshBefore
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &LNURLAuth{cfg: cfg, login: make(chan struct{}, 1)}, nil
}

// Headers returns the Authorization header with a valid token, logging in first when
// there is none.
func (a *LNURLAuth) Headers(ctx context.Context) (http.Header, error) {
	token, err := a.Token(ctx)
	if err != nil {
		return nil, err
	}
	return http.Header{"Authorization": {"Bearer " + token}}, nil
}

// Token returns the cached token while it is valid, and otherwise logs in for a new
// one.
func (a *LNURLAuth) Token(ctx context.Context) (string, error) {
	if token, ok := a.cached(); ok {
		return token, nil
	}
	select {
	case a.login <- struct{}{}:
		defer func() { <-a.login }()
	case <-ctx.Done():
		return "", connect.NewError(contextCode(ctx.Err()), ctx.Err())
	}
	if token, ok := a.cached(); ok { // another call logged in while this one waited
		return token, nil
	}
	token, exp, err := a.fetch(ctx)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token, a.expiry = token, time.Time{}
	if !exp.IsZero() {
		a.expiry = exp.Add(-a.cfg.RefreshBefore)
	}
	return token, nil
}

// Invalidate drops the cached token; the next call logs in again.
func (a *LNURLAuth) Invalidate() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token, a.expiry = "", time.Time{}
}

// cached returns the cached token if it is not due for renewal.
func (a *LNURLAuth) cached() (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == "" || (!a.expiry.IsZero() && !a.cfg.Now().Before(a.expiry)) {
		return "", false
	}
	return a.token, true
}

// fetch logs in: it gets an LNURL, answers its challenge and returns the token with
// its exp claim (zero when it has none).
func (a *LNURLAuth) fetch(ctx context.Context) (string, time.Time, error) {
	status, body, err := a.get(ctx, a.cfg.URL, maxLNURLBytes)
	if err != nil {
		return "", time.Time{}, err
	}
	if status != http.StatusOK {
		return "", time.Time{}, loginError(status, fmt.Errorf("vssclient: LNURL-auth: GET %s: status %d", a.cfg.URL, status))
	}
	lnurl := strings.TrimSpace(string(body))
	u, err := url.Parse(lnurl)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", time.Time{}, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("vssclient: LNURL-auth: %s answered %q, not an LNURL", a.cfg.URL, short(lnurl)))
	}
	q := u.Query()
	k1, err := hex.DecodeString(q.Get("k1"))
	if q.Get("tag") != "login" || err != nil || len(k1) != 32 {
		return "", time.Time{}, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("vssclient: LNURL-auth: %q is not a login LNURL with a 32-byte k1", short(lnurl)))
	}
	key := a.cfg.LinkingKey
	if a.cfg.LinkingKeyFor != nil {
		if key, err = a.cfg.LinkingKeyFor(u.Hostname()); err != nil {
			return "", time.Time{}, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("vssclient: LNURL-auth: linking key for %s: %w", u.Hostname(), err))
		}
	}
	sig := ecdsa.Sign(key, k1).Serialize()
	signed := lnurl + "&sig=" + hex.EncodeToString(sig) + "&key=" + hex.EncodeToString(key.PubKey().SerializeCompressed())

	status, body, err = a.get(ctx, signed, maxAnswerBytes)
	if err != nil {
		return "", time.Time{}, err
	}
	var answer struct {
		Status string `json:"status"`
		Token  string `json:"token"`
		Reason string `json:"reason"`
	}
	jsonErr := json.Unmarshal(body, &answer)
	switch {
	case status == http.StatusOK && jsonErr == nil && answer.Token != "" && !strings.EqualFold(answer.Status, "ERROR"):
	case answer.Reason != "":
		return "", time.Time{}, loginError(status, fmt.Errorf("vssclient: LNURL-auth refused (status %d): %s", status, answer.Reason))
	default:
		return "", time.Time{}, loginError(status, fmt.Errorf("vssclient: LNURL-auth: status %d without a token", status))
	}
	exp, err := tokenExpiry(answer.Token)
	if err != nil {
		return "", time.Time{}, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("vssclient: LNURL-auth: %w", err))
	}
	return answer.Token, exp, nil
}

// get fetches url and returns its status and at most limit bytes of its body. A
// transport failure is unavailable, so that the client retries it.
func (a *LNURLAuth) get(ctx context.Context, url string, limit int64) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("vssclient: LNURL-auth: %w", err))
	}
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, connect.NewError(transportCode(ctx), fmt.Errorf("vssclient: LNURL-auth: %w", err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return 0, nil, connect.NewError(transportCode(ctx), fmt.Errorf("vssclient: LNURL-auth: read the answer of %s: %w", resp.Request.URL.Redacted(), err))
	}
	return resp.StatusCode, body, nil
}

// transportCode is the code of a failed HTTP exchange: the context's if it ended,
// unavailable otherwise.
func transportCode(ctx context.Context) connect.Code {
	if err := ctx.Err(); err != nil {
		return contextCode(err)
	}
	return connect.CodeUnavailable
}

// loginError gives a refused login its code: the server's failures (5xx, 429) may
// pass and are unavailable; every other refusal is unauthenticated.
func loginError(status int, err error) error {
	if status >= 500 || status == http.StatusTooManyRequests {
		return connect.NewError(connect.CodeUnavailable, err)
	}
	return connect.NewError(connect.CodeUnauthenticated, err)
}

// tokenExpiry reads the exp claim of a JWT without verifying it (the server does),
// as vss-client-ng does. A token without exp has a zero expiry.
func tokenExpiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("the token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, errors.New("the token's payload is not base64url")
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, errors.New("the token's payload is not a JSON object with a numeric exp")
	}
	if claims.Exp == nil {
		return time.Time{}, nil
	}
	return time.Unix(int64(*claims.Exp), 0), nil
}

// short cuts s for an error message.
func short(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
