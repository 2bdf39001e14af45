package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/govss/vss/server"
)

// jwtNow is the fixed clock of the JWT tests.
var jwtNow = time.Unix(1_700_000_000, 0)

// testKeys are one private key of each supported type.
type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

// newRSA generates an RSA key of the given size.
func newRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newEC generates a P-256 key.
func newEC(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newEd generates an Ed25519 key.
func newEd(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newTestKeys generates one key of each supported type.
func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	return testKeys{rsa: newRSA(t, 2048), ec: newEC(t), ed: newEd(t)}
}

// public returns the public halves of k.
func (k testKeys) public() []crypto.PublicKey {
	return []crypto.PublicKey{&k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public()}
}

// validClaims are claims the JWT authorizer accepts at jwtNow.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "user-1",
		"iat": jwtNow.Add(-time.Minute).Unix(),
		"exp": jwtNow.Add(time.Hour).Unix(),
	}
}

// with returns claims with the given claims set (nil values delete).
func with(claims jwt.MapClaims, kv ...any) jwt.MapClaims {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(claims, kv[i].(string))
		} else {
			claims[kv[i].(string)] = kv[i+1]
		}
	}
	return claims
}

// sign returns a token signed with key, with extra header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken builds a token from literal JSON parts and a signature.
func rawToken(header, claims string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString(sig)
}

// newTestJWT returns a JWT authorizer whose clock is jwtNow unless cfg says otherwise.
func newTestJWT(t testing.TB, cfg JWTConfig) *JWT {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return jwtNow }
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	j, err := NewJWT(ctx, cfg)
	if err != nil {
		t.Fatalf("NewJWT: %v", err)
	}
	return j
}

func TestJWT(t *testing.T) {
	t.Parallel()
	keys := newTestKeys(t)
	other := newTestKeys(t)
	a := newTestJWT(t, JWTConfig{Keys: keys.public()})
	claimsJSON, err := json.Marshal(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey)})
	long := strings.Repeat("u", server.MaxUserLength)
	wide := strings.Repeat("é", server.MaxUserLength) // 120 characters, 240 bytes

	tests := []struct {
		name   string
		values []string
		user   string // accepted as this user
		want   string // or rejected with a message containing this
	}{
		{"RS256", []string{"Bearer " + sign(t, jwt.SigningMethodRS256, keys.rsa, validClaims(), nil)}, "user-1", ""},
		{"ES256", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, validClaims(), nil)}, "user-1", ""},
		{"EdDSA", []string{"Bearer " + sign(t, jwt.SigningMethodEdDSA, keys.ed, validClaims(), nil)}, "user-1", ""},
		{"lowercase scheme", []string{"bearer " + sign(t, jwt.SigningMethodES256, keys.ec, validClaims(), nil)}, "user-1", ""},
		{"uppercase scheme, extra spaces", []string{"BEARER   " + sign(t, jwt.SigningMethodES256, keys.ec, validClaims(), nil)}, "user-1", ""},
		{"kid naming no JWKS key", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, validClaims(), map[string]any{"kid": "x"})}, "user-1", ""},
		{"sub of 120 characters", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "sub", long), nil)}, long, ""},
		{"sub of 120 two-byte characters", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "sub", wide), nil)}, wide, ""},
		{"expired within leeway", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "exp", jwtNow.Add(-29*time.Second).Unix()), nil)}, "user-1", ""},
		{"nbf within leeway", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "nbf", jwtNow.Add(29*time.Second).Unix()), nil)}, "user-1", ""},
		{"iat within leeway", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "iat", jwtNow.Add(29*time.Second).Unix()), nil)}, "user-1", ""},
		{"no iat", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "iat", nil), nil)}, "user-1", ""},
		{"fractional exp", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "exp", float64(jwtNow.Unix())+0.5), nil)}, "user-1", ""},

		{"no header", nil, "", "missing bearer token"},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", "more than one Authorization header"},
		{"other scheme", []string{"Basic dXNlcjpwYXNz"}, "", "must use the Bearer scheme"},
		{"scheme only", []string{"Bearer"}, "", "has the Bearer scheme but no token"},
		{"scheme and spaces", []string{"Bearer   "}, "", "has the Bearer scheme but no token"},
		{"oversized token", []string{"Bearer " + strings.Repeat("a", MaxTokenBytes+1)}, "", "larger than 8192 bytes"},
		{"garbage", []string{"Bearer not-a-jwt"}, "", "malformed bearer token"},
		{"four segments", []string{"Bearer a.b.c.d"}, "", "malformed bearer token"},
		{"bad base64", []string{"Bearer !!.??.**"}, "", "malformed bearer token"},
		{"header not JSON", []string{"Bearer " + rawToken("nope", string(claimsJSON), nil)}, "", "malformed bearer token"},
		{"exp not a number", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "exp", "tomorrow"), nil)}, "", "malformed bearer token"},
		{"no alg", []string{"Bearer " + rawToken(`{"typ":"JWT"}`, string(claimsJSON), []byte("x"))}, "", "header has no alg"},
		{"alg none", []string{"Bearer " + rawToken(`{"alg":"none","typ":"JWT"}`, string(claimsJSON), nil)}, "", `unsupported JWT algorithm "none"`},
		{"alg none via library", []string{"Bearer " + sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims(), nil)}, "", `unsupported JWT algorithm "none"`},
		{"HS256 keyed with the RSA public key PEM", []string{"Bearer " + sign(t, jwt.SigningMethodHS256, rsaPEM, validClaims(), nil)}, "", `unsupported JWT algorithm "HS256"`},
		{"HS256 keyed with the RSA public key DER", []string{"Bearer " + sign(t, jwt.SigningMethodHS256, x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey), validClaims(), nil)}, "", `unsupported JWT algorithm "HS256"`},
		{"RS512", []string{"Bearer " + sign(t, jwt.SigningMethodRS512, keys.rsa, validClaims(), nil)}, "", `unsupported JWT algorithm "RS512"`},
		{"PS256", []string{"Bearer " + sign(t, jwt.SigningMethodPS256, keys.rsa, validClaims(), nil)}, "", `unsupported JWT algorithm "PS256"`},
		{"unknown alg", []string{"Bearer " + rawToken(`{"alg":"XX999"}`, string(claimsJSON), []byte("x"))}, "", `unsupported JWT algorithm "XX999"`},
		{"RS256 by another key", []string{"Bearer " + sign(t, jwt.SigningMethodRS256, other.rsa, validClaims(), nil)}, "", "signature is invalid"},
		{"ES256 by another key", []string{"Bearer " + sign(t, jwt.SigningMethodES256, other.ec, validClaims(), nil)}, "", "signature is invalid"},
		{"EdDSA by another key", []string{"Bearer " + sign(t, jwt.SigningMethodEdDSA, other.ed, validClaims(), nil)}, "", "signature is invalid"},
		{"tampered claims", []string{"Bearer " + tamper(t, sign(t, jwt.SigningMethodES256, keys.ec, validClaims(), nil), "user-2")}, "", "signature is invalid"},
		{"crit header", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, validClaims(), map[string]any{"crit": []string{"exp"}})}, "", "critical header"},
		{"expired", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "exp", jwtNow.Add(-31*time.Second).Unix()), nil)}, "", "JWT has expired"},
		{"no exp", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "exp", nil), nil)}, "", "no exp claim"},
		{"nbf in the future", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "nbf", jwtNow.Add(31*time.Second).Unix()), nil)}, "", "nbf claim is in the future"},
		{"iat in the future", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "iat", jwtNow.Add(time.Hour).Unix()), nil)}, "", "iat (issued at) claim is in the future"},
		{"no sub", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "sub", nil), nil)}, "", "no sub claim"},
		{"empty sub", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "sub", ""), nil)}, "", "no sub claim"},
		{"sub of 121 characters", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "sub", long+"u"), nil)}, "", "longer than 120 characters"},
		{"sub with NUL", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "sub", "a\x00b"), nil)}, "", "control characters"},
		{"sub not a string", []string{"Bearer " + sign(t, jwt.SigningMethodES256, keys.ec, with(validClaims(), "sub", 42), nil)}, "", "malformed bearer token"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := authorize(a, tt.values...)
			if tt.want == "" {
				if err != nil || user != tt.user {
					t.Fatalf("Authorize = %q, %v; want %q", user, err, tt.user)
				}
				return
			}
			msg := authMessage(t, mustFail(user, err))
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("message %q does not contain %q", msg, tt.want)
			}
			if prev, ok := seen[msg]; ok && prev != tt.want {
				t.Fatalf("message %q is shared by two different failures (%q and %q)", msg, prev, tt.want)
			}
			seen[msg] = tt.want
		})
	}
}

// tamper replaces the claims of a signed token, keeping its signature.
func tamper(t testing.TB, token, sub string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	claims := with(validClaims(), "sub", sub)
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestJWTAlgorithmPinnedByKeyType(t *testing.T) {
	t.Parallel()
	keys := newTestKeys(t)
	onlyEC := newTestJWT(t, JWTConfig{Keys: []crypto.PublicKey{&keys.ec.PublicKey}})
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"RS256 with only an EC key", sign(t, jwt.SigningMethodRS256, keys.rsa, validClaims(), nil), "unexpected JWT algorithm RS256"},
		{"EdDSA with only an EC key", sign(t, jwt.SigningMethodEdDSA, keys.ed, validClaims(), nil), "unexpected JWT algorithm EdDSA"},
	}
	for _, tt := range tests {
		msg := authMessage(t, mustFail(authorize(onlyEC, "Bearer "+tt.token)))
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%s: message %q does not contain %q", tt.name, msg, tt.want)
		}
	}
	if user, err := authorize(onlyEC, "Bearer "+sign(t, jwt.SigningMethodES256, keys.ec, validClaims(), nil)); err != nil || user != "user-1" {
		t.Fatalf("ES256: Authorize = %q, %v", user, err)
	}
}

func TestJWTLeeway(t *testing.T) {
	t.Parallel()
	key := newEC(t)
	expired10s := "Bearer " + sign(t, jwt.SigningMethodES256, key, with(validClaims(), "exp", jwtNow.Add(-10*time.Second).Unix()), nil)
	expired2m := "Bearer " + sign(t, jwt.SigningMethodES256, key, with(validClaims(), "exp", jwtNow.Add(-2*time.Minute).Unix()), nil)
	tests := []struct {
		leeway  time.Duration
		token   string
		accepts bool
	}{
		{0, expired10s, true}, // DefaultLeeway
		{-1, expired10s, false},
		{5 * time.Second, expired10s, false},
		{5 * time.Minute, expired2m, true},
		{0, expired2m, false},
	}
	for _, tt := range tests {
		a := newTestJWT(t, JWTConfig{Keys: []crypto.PublicKey{&key.PublicKey}, Leeway: tt.leeway})
		_, err := authorize(a, tt.token)
		if (err == nil) != tt.accepts {
			t.Errorf("leeway %v: err = %v, want accepted %v", tt.leeway, err, tt.accepts)
		}
	}
}

func TestJWTIssuerAndAudience(t *testing.T) {
	t.Parallel()
	key := newEC(t)
	a := newTestJWT(t, JWTConfig{Keys: []crypto.PublicKey{&key.PublicKey}, Issuer: "https://issuer.example", Audience: "vss"})
	good := with(validClaims(), "iss", "https://issuer.example", "aud", []string{"other", "vss"})
	tests := []struct {
		name   string
		claims jwt.MapClaims
		want   string
	}{
		{"accepted", good, ""},
		{"single aud string", with(validClaims(), "iss", "https://issuer.example", "aud", "vss"), ""},
		{"wrong issuer", with(validClaims(), "iss", "https://evil.example", "aud", "vss"), "issuer (iss) is not the one"},
		{"no issuer", with(validClaims(), "aud", "vss"), "no iss claim"},
		{"wrong audience", with(validClaims(), "iss", "https://issuer.example", "aud", "other"), "audience (aud) does not include"},
		{"no audience", with(validClaims(), "iss", "https://issuer.example"), "no aud claim"},
	}
	for _, tt := range tests {
		user, err := authorize(a, "Bearer "+sign(t, jwt.SigningMethodES256, key, tt.claims, nil))
		if tt.want == "" {
			if err != nil || user != "user-1" {
				t.Errorf("%s: Authorize = %q, %v", tt.name, user, err)
			}
			continue
		}
		if msg := authMessage(t, mustFail(user, err)); !strings.Contains(msg, tt.want) {
			t.Errorf("%s: message %q does not contain %q", tt.name, msg, tt.want)
		}
	}
}

func TestJWTNilClockUsesNow(t *testing.T) {
	t.Parallel()
	key := newEC(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := NewJWT(ctx, JWTConfig{Keys: []crypto.PublicKey{&key.PublicKey}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := sign(t, jwt.SigningMethodES256, key, jwt.MapClaims{"sub": "u", "exp": now.Add(time.Minute).Unix()}, nil)
	if user, err := authorize(a, "Bearer "+tok); err != nil || user != "u" {
		t.Fatalf("Authorize = %q, %v", user, err)
	}
}

func TestNewJWTConfigErrors(t *testing.T) {
	t.Parallel()
	small := newRSA(t, 1024)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  JWTConfig
		want string
	}{
		{"nothing", JWTConfig{}, "no JWT verification key configured"},
		{"1024-bit RSA", JWTConfig{Keys: []crypto.PublicKey{&small.PublicKey}}, "RSA key has 1024 bits"},
		{"P-384", JWTConfig{Keys: []crypto.PublicKey{&p384.PublicKey}}, "only P-256"},
		{"HMAC secret", JWTConfig{Keys: []crypto.PublicKey{[]byte("secret")}}, "unsupported key type"},
		{"nil key", JWTConfig{Keys: []crypto.PublicKey{nil}}, "nil key"},
		{"bad Ed25519", JWTConfig{Keys: []crypto.PublicKey{ed25519.PublicKey{1, 2, 3}}}, "invalid Ed25519 public key"},
		{"ftp JWKS URL", JWTConfig{JWKSURL: "ftp://example.com/jwks.json"}, "not an absolute http or https URL"},
		{"relative JWKS URL", JWTConfig{JWKSURL: "/jwks.json"}, "not an absolute http or https URL"},
		{"missing JWKS file", JWTConfig{JWKSFile: t.TempDir() + "/none.json"}, "no such file"},
	}
	for _, tt := range tests {
		_, err := NewJWT(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewJWT error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestJWTPrivateKeyStandsForItsPublicKey(t *testing.T) {
	t.Parallel()
	key := newEC(t)
	a := newTestJWT(t, JWTConfig{Keys: []crypto.PublicKey{key}})
	if user, err := authorize(a, "Bearer "+sign(t, jwt.SigningMethodES256, key, validClaims(), nil)); err != nil || user != "user-1" {
		t.Fatalf("Authorize = %q, %v", user, err)
	}
}

// TestJWTTokenSizeCap checks that a token just under MaxTokenBytes is still parsed and
// accepted; the oversized case is in TestJWT.
func TestJWTTokenSizeCap(t *testing.T) {
	t.Parallel()
	key := newEC(t)
	a := newTestJWT(t, JWTConfig{Keys: []crypto.PublicKey{&key.PublicKey}})
	padded := func(n int) string {
		return sign(t, jwt.SigningMethodES256, key, with(validClaims(), "pad", strings.Repeat("p", n)), nil)
	}
	n := MaxTokenBytes * 3 / 4
	n -= (len(padded(n)) - MaxTokenBytes) * 3 / 4
	for len(padded(n)) > MaxTokenBytes {
		n--
	}
	tok := padded(n)
	if len(tok) < MaxTokenBytes-4 {
		t.Fatalf("built a %d-byte token, want just under %d", len(tok), MaxTokenBytes)
	}
	if user, err := authorize(a, "Bearer "+tok); err != nil || user != "user-1" {
		t.Fatalf("%d-byte token: Authorize = %q, %v", len(tok), user, err)
	}
}
