package lnurlauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/jackc/pgx/v5"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/sqlite"
)

// TestLogin runs the whole exchange as vss-client-ng does, over HTTP, with every store:
// fetch an LNURL, sign it, get a token, and check the token.
func TestLogin(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, store storage.AuthStore) {
		const ttl = 90 * time.Minute
		ts := startIssuer(t, store, Config{TokenTTL: ttl})
		publicURL := ts.issuer.publicURL

		lnurl := ts.fetchLNURL(t)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(publicURL+VerifyPath) + `\?tag=login&k1=[0-9a-f]{64}$`).MatchString(lnurl) {
			t.Fatalf("LNURL = %q, want %s?tag=login&k1=<64 lowercase hex digits>", lnurl, publicURL+VerifyPath)
		}
		if other := ts.fetchLNURL(t); other == lnurl {
			t.Fatalf("two LNURLs share the challenge %q", lnurl)
		}

		wallet := newWallet(t)
		signed := sign(t, lnurl, wallet)
		status, resp := ts.call(t, signed)
		if status != http.StatusOK {
			t.Fatalf("verify: %d %+v", status, resp)
		}

		now := ts.clock.Now()
		claims, header := verifyToken(t, resp.Token, ts.issuer.PublicKey(), now)
		if header["alg"] != "ES256" || header["kid"] != ts.issuer.KeyID() || header["typ"] != "JWT" {
			t.Errorf("header = %v, want alg ES256, typ JWT and kid %q", header, ts.issuer.KeyID())
		}
		if claims.Subject != keyHex(wallet) || len(claims.Subject) != 66 {
			t.Errorf("sub = %q, want the linking key %q", claims.Subject, keyHex(wallet))
		}
		if claims.Issuer != publicURL {
			t.Errorf("iss = %q, want %q", claims.Issuer, publicURL)
		}
		if claims.IssuedAt == nil || claims.ExpiresAt == nil {
			t.Fatalf("iat = %v, exp = %v; want both", claims.IssuedAt, claims.ExpiresAt)
		}
		if iat := claims.IssuedAt.Time; iat.Unix() != now.Unix() {
			t.Errorf("iat = %v, want %v", iat, now.Truncate(time.Second))
		}
		if d := claims.ExpiresAt.Sub(claims.IssuedAt.Time); d != ttl {
			t.Errorf("exp - iat = %v, want %v", d, ttl)
		}
		if exp := expiryClaim(t, resp.Token); exp != uint64(claims.ExpiresAt.Unix()) {
			t.Errorf("exp read as the client does = %d, want %d", exp, claims.ExpiresAt.Unix())
		}

		// The same signed LNURL, once more.
		status, resp = ts.call(t, signed)
		if status != http.StatusForbidden || !strings.Contains(resp.Reason, "already used") {
			t.Fatalf("replay: %d %+v; want 403, already used", status, resp)
		}
	})
}

// query joins key=value pairs into a query string, in order, without escaping.
func query(pairs ...string) string {
	var parts []string
	for i := 0; i < len(pairs); i += 2 {
		parts = append(parts, pairs[i]+"="+pairs[i+1])
	}
	return strings.Join(parts, "&")
}

// derSignature encodes r and s in DER as given, without making s low.
func derSignature(r, s secp256k1.ModNScalar) []byte {
	integer := func(v secp256k1.ModNScalar) []byte {
		b := v.Bytes()
		out := bytes.TrimLeft(b[:], "\x00")
		if len(out) == 0 || out[0]&0x80 != 0 {
			out = append([]byte{0}, out...)
		}
		return append([]byte{0x02, byte(len(out))}, out...)
	}
	body := append(integer(r), integer(s)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// TestRefusals sends malformed and false proofs: each gets its status and a reason,
// and none spends the challenge, which its wallet can still answer afterwards.
func TestRefusals(t *testing.T) {
	t.Parallel()
	ts := startIssuer(t, openMemory(t), Config{})

	// proof is what one case may use: a fresh challenge, its wallet, and the correct
	// parameters.
	type proof struct {
		raw      []byte // k1
		wallet   *secp256k1.PrivateKey
		k1, sig  string // hex
		key      string // hex
		sigBytes []byte
	}
	// forged signs an arbitrary 32-byte message as the wallet would.
	forged := func(msg []byte, key *secp256k1.PrivateKey) string {
		return hex.EncodeToString(secpecdsa.Sign(key, msg).Serialize())
	}
	unissued := func(mutate func(k1 []byte)) func(p proof) string {
		return func(p proof) string {
			k1 := bytes.Clone(p.raw)
			mutate(k1)
			return query("tag", "login", "k1", hex.EncodeToString(k1), "sig", forged(k1, p.wallet), "key", p.key)
		}
	}

	cases := []struct {
		name   string
		query  func(p proof) string
		status int
		reason string
	}{
		{"missing tag", func(p proof) string { return query("k1", p.k1, "sig", p.sig, "key", p.key) }, 400, "tag is missing"},
		{"empty tag", func(p proof) string { return query("tag", "", "k1", p.k1, "sig", p.sig, "key", p.key) }, 400, "tag is missing"},
		{"wrong tag", func(p proof) string { return query("tag", "withdrawRequest", "k1", p.k1, "sig", p.sig, "key", p.key) }, 400, "tag must be"},
		{"repeated tag", func(p proof) string {
			return query("tag", "login", "tag", "login", "k1", p.k1, "sig", p.sig, "key", p.key)
		}, 400, "tag is repeated"},
		{"malformed query", func(p proof) string { return query("tag", "login", "k1", p.k1, "sig", p.sig, "key", p.key+"%zz") }, 400, "malformed query"},
		{"missing k1", func(p proof) string { return query("tag", "login", "sig", p.sig, "key", p.key) }, 400, "k1 is missing"},
		{"repeated k1", func(p proof) string {
			return query("tag", "login", "k1", p.k1, "k1", p.k1, "sig", p.sig, "key", p.key)
		}, 400, "k1 is repeated"},
		{"short k1", func(p proof) string { return query("tag", "login", "k1", p.k1[2:], "sig", p.sig, "key", p.key) }, 400, "k1 must be"},
		{"long k1", func(p proof) string { return query("tag", "login", "k1", p.k1+"00", "sig", p.sig, "key", p.key) }, 400, "k1 must be"},
		{"k1 not hex", func(p proof) string {
			return query("tag", "login", "k1", strings.Repeat("zz", 32), "sig", p.sig, "key", p.key)
		}, 400, "k1 must be"},
		{"missing sig", func(p proof) string { return query("tag", "login", "k1", p.k1, "key", p.key) }, 400, "sig is missing"},
		{"sig not hex", func(p proof) string { return query("tag", "login", "k1", p.k1, "sig", "xyz", "key", p.key) }, 400, "sig must be"},
		{"sig not DER", func(p proof) string {
			return query("tag", "login", "k1", p.k1, "sig", strings.Repeat("ab", 70), "key", p.key)
		}, 400, "sig must be"},
		{"sig with a trailing byte", func(p proof) string {
			return query("tag", "login", "k1", p.k1, "sig", p.sig+"00", "key", p.key)
		}, 400, "sig must be"},
		{"sig too long", func(p proof) string {
			return query("tag", "login", "k1", p.k1, "sig", strings.Repeat("00", 73), "key", p.key)
		}, 400, "sig must be"},
		{"sig compact, not DER", func(p proof) string {
			sig, _ := secpecdsa.ParseDERSignature(p.sigBytes)
			r, s := sig.R(), sig.S()
			rb, sb := r.Bytes(), s.Bytes()
			return query("tag", "login", "k1", p.k1, "sig", hex.EncodeToString(append(rb[:], sb[:]...)), "key", p.key)
		}, 400, "sig must be"},
		{"sig with a high S", func(p proof) string {
			sig, _ := secpecdsa.ParseDERSignature(p.sigBytes)
			r, s := sig.R(), sig.S()
			s.Negate()
			return query("tag", "login", "k1", p.k1, "sig", hex.EncodeToString(derSignature(r, s)), "key", p.key)
		}, 400, "low S"},
		{"missing key", func(p proof) string { return query("tag", "login", "k1", p.k1, "sig", p.sig) }, 400, "key is missing"},
		{"key not hex", func(p proof) string { return query("tag", "login", "k1", p.k1, "sig", p.sig, "key", "02zz") }, 400, "key must be"},
		{"key uncompressed", func(p proof) string {
			return query("tag", "login", "k1", p.k1, "sig", p.sig, "key", hex.EncodeToString(p.wallet.PubKey().SerializeUncompressed()))
		}, 400, "key must be"},
		{"key with a bad prefix", func(p proof) string {
			return query("tag", "login", "k1", p.k1, "sig", p.sig, "key", "04"+p.key[2:])
		}, 400, "key must be"},
		{"key off the curve", func(p proof) string {
			// x = 5 has no square root of x³ + 7 modulo p.
			return query("tag", "login", "k1", p.k1, "sig", p.sig, "key", "02"+strings.Repeat("00", 31)+"05")
		}, 400, "not a point"},
		{"signature by another key", func(p proof) string {
			return query("tag", "login", "k1", p.k1, "sig", p.sig, "key", keyHex(newWallet(t)))
		}, 403, "invalid signature"},
		{"signature of another message", func(p proof) string {
			digest := sha256.Sum256(p.raw)
			return query("tag", "login", "k1", p.k1, "sig", forged(digest[:], p.wallet), "key", p.key)
		}, 403, "invalid signature"},
		{"k1 not issued here", unissued(func(k1 []byte) { _, _ = rand.Read(k1) }), 403, "unknown challenge"},
		{"k1 with a later expiry", unissued(func(k1 []byte) { k1[7]++ }), 403, "unknown challenge"},
		{"k1 with another nonce", unissued(func(k1 []byte) { k1[8] ^= 1 }), 403, "unknown challenge"},
		{"k1 with a wrong MAC", unissued(func(k1 []byte) { k1[31] ^= 1 }), 403, "unknown challenge"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			lnurl := ts.fetchLNURL(t)
			wallet := newWallet(t)
			k1 := k1Of(t, lnurl)
			sig := secpecdsa.Sign(wallet, k1).Serialize()
			p := proof{
				raw: k1, wallet: wallet,
				k1: hex.EncodeToString(k1), sig: hex.EncodeToString(sig), key: keyHex(wallet), sigBytes: sig,
			}
			status, resp := ts.call(t, ts.verifyURL(c.query(p)))
			if status != c.status || !strings.Contains(resp.Reason, c.reason) {
				t.Fatalf("%d %+v; want %d with a reason containing %q", status, resp, c.status, c.reason)
			}
			// The challenge is still good for its wallet.
			if status, resp := ts.call(t, sign(t, lnurl, wallet)); status != http.StatusOK {
				t.Fatalf("after the refusal, the right answer got %d %+v", status, resp)
			}
		})
	}
}

// TestChallengeExpiry answers challenges just before and at their expiry, by the
// issuer's clock.
func TestChallengeExpiry(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Minute
	ts := startIssuer(t, openMemory(t), Config{ChallengeTTL: ttl})
	// The expiry counts in whole seconds: start on one.
	ts.clock.Advance(ts.clock.Now().Truncate(time.Second).Add(time.Second).Sub(ts.clock.Now()))
	early, late := ts.fetchLNURL(t), ts.fetchLNURL(t)
	if exp := binary.BigEndian.Uint64(k1Of(t, early)[:8]); exp != uint64(ts.clock.Now().Add(ttl).Unix()) {
		t.Fatalf("k1 expires at %d, want %d", exp, ts.clock.Now().Add(ttl).Unix())
	}
	wallet := newWallet(t)

	ts.clock.Advance(ttl - time.Second)
	if status, resp := ts.call(t, sign(t, early, wallet)); status != http.StatusOK {
		t.Fatalf("a second before expiry: %d %+v", status, resp)
	}
	ts.clock.Advance(time.Second)
	if status, resp := ts.call(t, sign(t, late, wallet)); status != http.StatusForbidden || !strings.Contains(resp.Reason, "expired") {
		t.Fatalf("at expiry: %d %+v; want 403, expired", status, resp)
	}
}

// TestInstancesShareState runs two issuers on one PostgreSQL database, as two server
// instances behind one public URL: they sign with the same key, each accepts the
// other's challenges, and a challenge is accepted once among them.
func TestInstancesShareState(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	cfg := Config{PublicURL: "http://vss.example.com"}
	a := startIssuer(t, openPostgres(t, dbURL), cfg)
	b := startIssuer(t, openPostgres(t, dbURL), cfg)
	if !a.issuer.signingKey.Equal(b.issuer.signingKey) || a.issuer.KeyID() != b.issuer.KeyID() {
		t.Fatal("two issuers on one database have different signing keys")
	}

	wallet := newWallet(t)
	signed := sign(t, a.fetchLNURL(t), wallet)
	status, resp := b.call(t, signed)
	if status != http.StatusOK {
		t.Fatalf("A's challenge answered at B: %d %+v", status, resp)
	}
	claims, _ := verifyToken(t, resp.Token, a.issuer.PublicKey(), b.clock.Now()) // B issued it, on its own test clock
	if claims.Subject != keyHex(wallet) {
		t.Fatalf("sub = %q, want %q", claims.Subject, keyHex(wallet))
	}
	if status, resp := a.call(t, signed); status != http.StatusForbidden || !strings.Contains(resp.Reason, "already used") {
		t.Fatalf("replay at A of a challenge answered at B: %d %+v; want 403, already used", status, resp)
	}

	// One signed challenge sent to both instances many times at once wins once.
	signed = sign(t, b.fetchLNURL(t), wallet)
	const tries = 12
	statuses := make([]int, tries)
	var wg sync.WaitGroup
	for i := range tries {
		ts := []*testServer{a, b}[i%2]
		wg.Go(func() { statuses[i], _ = ts.call(t, signed) })
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			won++
		case http.StatusForbidden:
		default:
			t.Fatalf("concurrent answers: status %d", s)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent answers got a token, want 1", won, tries)
	}
}

// TestRestart restarts the issuer on the same database file: it keeps its signing key,
// accepts a challenge issued before the restart, and refuses one answered before it.
func TestRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vss.db")
	open := func() *sqlite.Store {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cfg := Config{PublicURL: "http://vss.example.com"}
	store := open()
	before := startIssuer(t, store, cfg)
	wallet := newWallet(t)
	answered := sign(t, before.fetchLNURL(t), wallet)
	status, resp := before.call(t, answered)
	if status != http.StatusOK {
		t.Fatalf("before the restart: %d %+v", status, resp)
	}
	pending := sign(t, before.fetchLNURL(t), wallet)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store = open()
	t.Cleanup(func() { _ = store.Close() })
	after := startIssuer(t, store, cfg)
	if !after.issuer.signingKey.Equal(before.issuer.signingKey) || after.issuer.KeyID() != before.issuer.KeyID() {
		t.Fatal("the signing key changed across a restart")
	}
	verifyToken(t, resp.Token, after.issuer.PublicKey(), after.clock.Now())
	if status, resp := after.call(t, answered); status != http.StatusForbidden {
		t.Fatalf("replay after the restart: %d %+v; want 403", status, resp)
	}
	if status, resp := after.call(t, pending); status != http.StatusOK {
		t.Fatalf("challenge issued before the restart: %d %+v", status, resp)
	}

	// A new Issuer on an open store (another instance in the same process) too.
	again, err := New(t.Context(), Config{PublicURL: cfg.PublicURL, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if again.KeyID() != before.issuer.KeyID() {
		t.Fatal("a second Issuer on the store has another key")
	}
}

// TestStoreFailureHidden closes the database under the issuer: the wallet gets a
// generic 500, never the driver's words.
func TestStoreFailureHidden(t *testing.T) {
	t.Parallel()
	store := openMemory(t)
	ts := startIssuer(t, store, Config{})
	signed := sign(t, ts.fetchLNURL(t), newWallet(t))
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	status, resp := ts.call(t, signed)
	if status != http.StatusInternalServerError || resp.Reason != "internal error" {
		t.Fatalf("with the database closed: %d %+v; want 500, internal error", status, resp)
	}
}

// TestStoredSigningKey stores signing keys before the issuer starts, as an operator
// might: a PKCS #8 PEM P-256 key is used; other keys are refused.
func TestStoredSigningKey(t *testing.T) {
	t.Parallel()
	pkcs8PEM := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		name2data map[string][]byte
		ok        bool
	}{
		{"PEM P-256", map[string][]byte{signingKeyName: pkcs8PEM(p256)}, true},
		{"PEM P-384", map[string][]byte{signingKeyName: pkcs8PEM(p384)}, false},
		{"SEC 1 DER", map[string][]byte{signingKeyName: sec1}, false},
		{"SEC 1 PEM", map[string][]byte{signingKeyName: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})}, false},
		{"garbage", map[string][]byte{signingKeyName: []byte("not a key")}, false},
		{"short MAC key", map[string][]byte{macKeyName: make([]byte, 16)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			store := openMemory(t)
			for name, data := range c.name2data {
				if _, err := store.Secret(t.Context(), name, func() ([]byte, error) { return data, nil }); err != nil {
					t.Fatal(err)
				}
			}
			issuer, err := New(t.Context(), Config{PublicURL: "https://vss.example.com", Store: store})
			if !c.ok {
				if err == nil {
					t.Fatal("New succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !issuer.signingKey.Equal(p256) {
				t.Fatal("the issuer does not use the stored key")
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	store := openMemory(t)
	good := Config{PublicURL: "https://vss.example.com", Store: store}
	for _, c := range []struct {
		name string
		edit func(*Config)
	}{
		{"no store", func(c *Config) { c.Store = nil }},
		{"no public URL", func(c *Config) { c.PublicURL = "" }},
		{"relative URL", func(c *Config) { c.PublicURL = "/vss" }},
		{"no host", func(c *Config) { c.PublicURL = "https://" }},
		{"other scheme", func(c *Config) { c.PublicURL = "ftp://vss.example.com" }},
		{"query", func(c *Config) { c.PublicURL = "https://vss.example.com?x=1" }},
		{"fragment", func(c *Config) { c.PublicURL = "https://vss.example.com#x" }},
		{"user", func(c *Config) { c.PublicURL = "https://u:p@vss.example.com" }},
		{"short token TTL", func(c *Config) { c.TokenTTL = time.Minute }},
		{"negative token TTL", func(c *Config) { c.TokenTTL = -time.Hour }},
		{"short challenge TTL", func(c *Config) { c.ChallengeTTL = time.Millisecond }},
	} {
		cfg := good
		c.edit(&cfg)
		if _, err := New(t.Context(), cfg); err == nil {
			t.Errorf("%s: New succeeded", c.name)
		}
	}

	// A trailing slash is dropped; a path prefix is kept.
	for in, want := range map[string]string{
		"https://vss.example.com/":     "https://vss.example.com/auth/lnurl/verify",
		"https://example.com/vss-auth": "https://example.com/vss-auth/auth/lnurl/verify",
	} {
		cfg := good
		cfg.PublicURL = in
		issuer, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if issuer.verifyURL != want {
			t.Errorf("%s: LNURL base %q, want %q", in, issuer.verifyURL, want)
		}
	}

	// An IP address works but is reported: vss-client-ng cannot use it.
	var logs bytes.Buffer
	cfg := good
	cfg.PublicURL, cfg.Logger = "http://127.0.0.1:8080", slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := New(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "IP address") {
		t.Errorf("no warning about the IP address; logs: %s", logs.String())
	}
}

// terminateConnections ends every other session on the database at dbURL, as a
// database restart would.
func terminateConnections(t *testing.T, dbURL string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
}

// TestDatabaseUnavailable cuts the issuer's database connections: the wallet gets a
// 503 with a generic reason, the challenge is not spent, and the next try succeeds.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	ts := startIssuer(t, openPostgres(t, dbURL), Config{})
	signed := sign(t, ts.fetchLNURL(t), newWallet(t))
	terminateConnections(t, dbURL)
	status, resp := ts.call(t, signed)
	if status != http.StatusServiceUnavailable || resp.Reason != "service unavailable, try again" {
		t.Fatalf("with the connections cut: %d %+v; want 503 with a generic reason", status, resp)
	}
	if status, resp := ts.call(t, signed); status != http.StatusOK {
		t.Fatalf("once the database is back: %d %+v", status, resp)
	}
}
