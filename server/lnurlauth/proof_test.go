package lnurlauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// extendedKey is a BIP 32 extended private key, enough of it to derive the LUD-05 keys
// of vss-client-ng's test vector.
type extendedKey struct {
	key, chain [32]byte
}

// hmacSHA512 returns HMAC-SHA512(key, data).
func hmacSHA512(key, data []byte) []byte {
	m := hmac.New(sha512.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// masterKey derives the BIP 32 master key of seed.
func masterKey(seed []byte) extendedKey {
	i := hmacSHA512([]byte("Bitcoin seed"), seed)
	var x extendedKey
	copy(x.key[:], i[:32])
	copy(x.chain[:], i[32:])
	return x
}

// child derives the child at index (hardened from 2³¹ on) by BIP 32's CKDpriv.
func (x extendedKey) child(t *testing.T, index uint32) extendedKey {
	t.Helper()
	var data []byte
	if index >= 1<<31 {
		data = append([]byte{0}, x.key[:]...)
	} else {
		data = secp256k1.PrivKeyFromBytes(x.key[:]).PubKey().SerializeCompressed()
	}
	data = binary.BigEndian.AppendUint32(data, index)
	i := hmacSHA512(x.chain[:], data)
	var il, k secp256k1.ModNScalar
	if il.SetByteSlice(i[:32]) {
		t.Fatal("BIP 32: IL is not below the group order") // probability 2⁻¹²⁷
	}
	k.SetBytes(&x.key)
	il.Add(&k)
	if il.IsZero() {
		t.Fatal("BIP 32: the child key is zero")
	}
	child := extendedKey{key: il.Bytes()}
	copy(child.chain[:], i[32:])
	return child
}

// linkingKeyPath returns the LUD-05 derivation path of the linking key for domain:
// the first 16 bytes of HMAC-SHA256(hashing key, domain) as four big-endian indexes.
func linkingKeyPath(hashingKey []byte, domain string) []uint32 {
	m := hmac.New(sha256.New, hashingKey)
	m.Write([]byte(domain))
	sum := m.Sum(nil)
	path := make([]uint32, 4)
	for i := range path {
		path[i] = binary.BigEndian.Uint32(sum[4*i:])
	}
	return path
}

// TestLinkingKeyPathVector checks linkingKeyPath against the LUD-05 test vector.
func TestLinkingKeyPathVector(t *testing.T) {
	t.Parallel()
	hashingKey, _ := hex.DecodeString("7d417a6a5e9a6a4a879aeaba11a11838764c8fa2b959c242d43dea682b3e409b")
	got := linkingKeyPath(hashingKey, "site.com")
	if want := []uint32{1588488367, 2659270754, 38110259, 4136336762}; !slices.Equal(got, want) {
		t.Fatalf("path = %v, want %v", got, want)
	}
}

// TestClientSigningVector reproduces vss-client-ng's own sign_lnurl test vector from
// its seed (LUD-05 keys derived from the BIP 32 master key, as the test passes it),
// byte for byte, and checks that the issuer's parser and verifier accept it. It
// shows that what the client sends is what the issuer reads.
func TestClientSigningVector(t *testing.T) {
	t.Parallel()
	const (
		lnurl = "https://example.com/path?tag=login&k1=e2af6254a8df433264fa23f67eb8188635d15ce883e8fc020989d5f82ae6f11e"
		want  = lnurl + "&sig=3045022100a75df468de452e618edb8030016eb0894204655c7d93ece1be007fcf36843522022048bc2f00a0a5a30601d274b49cfaf9ef4c76176e5401d0dfb195f5d6ab8ab4c4" +
			"&key=02d9eb1b467517d685e3b5439082c14bb1a2c9ae672df4d9046d208c193a5846e0"
	)
	seed := bytes.Repeat([]byte{0xab}, 32)
	parent := masterKey(seed)
	hashing := parent.child(t, 0)
	linking := parent
	for _, index := range linkingKeyPath(hashing.key[:], "example.com") {
		linking = linking.child(t, index)
	}
	got := sign(t, lnurl, secp256k1.PrivKeyFromBytes(linking.key[:]))
	if got != want {
		t.Fatalf("signed LNURL:\n got %s\nwant %s", got, want)
	}

	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseProof(u.RawQuery)
	if err != nil {
		t.Fatalf("parseProof: %v", err)
	}
	if !p.sig.Verify(p.k1[:], p.key) {
		t.Fatal("the client's signature does not verify")
	}
}

// TestSignatureEncoding signs with a fixed key as libsecp256k1 would (RFC 6979 nonce,
// low S) and checks the minimal DER the client sends, and that it parses back.
func TestSignatureEncoding(t *testing.T) {
	t.Parallel()
	key := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{0x2a}, 32))
	halfOrder := func(s secp256k1.ModNScalar) bool { return !s.IsOverHalfOrder() }
	for i := range 64 {
		k1 := sha256.Sum256([]byte{byte(i)})
		sig := ecdsa.Sign(key, k1[:])
		der := sig.Serialize()
		if again := ecdsa.Sign(key, k1[:]).Serialize(); !bytes.Equal(der, again) {
			t.Fatal("signing is not deterministic")
		}
		s := sig.S()
		if !halfOrder(s) {
			t.Fatalf("k1 %x: S is high", k1)
		}
		// 0x30 len 0x02 rlen r 0x02 slen s, integers minimal and positive.
		if len(der) < 8 || len(der) > maxDERSignatureLen || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[2] != 0x02 {
			t.Fatalf("k1 %x: DER %x malformed", k1, der)
		}
		rLen := int(der[3])
		r, rest := der[4:4+rLen], der[4+rLen:]
		if rest[0] != 0x02 || int(rest[1]) != len(rest)-2 {
			t.Fatalf("k1 %x: DER %x malformed", k1, der)
		}
		for _, n := range [][]byte{r, rest[2:]} {
			if n[0]&0x80 != 0 || (len(n) > 1 && n[0] == 0 && n[1]&0x80 == 0) {
				t.Fatalf("k1 %x: DER %x has a non-minimal or negative integer", k1, der)
			}
		}
		q := query("tag", "login", "k1", hex.EncodeToString(k1[:]), "sig", hex.EncodeToString(der), "key", keyHex(key))
		p, err := parseProof(q)
		if err != nil || !p.sig.Verify(k1[:], p.key) {
			t.Fatalf("k1 %x: the signature does not parse and verify: %v", k1, err)
		}
	}
}

// TestKeyID checks the kid against an RFC 7638 thumbprint computed from the JWK JSON.
func TestKeyID(t *testing.T) {
	t.Parallel()
	data, err := generateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseSigningKey(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := thumbprint(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// x and y are the 32-byte coordinates; encoding/json sorts the members.
	point, _ := key.PublicKey.Bytes()
	jwk := map[string]string{
		"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(point[1:33]), "y": base64.RawURLEncoding.EncodeToString(point[33:]),
	}
	canonical, err := json.Marshal(jwk)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canonical)
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("kid = %s, want %s (thumbprint of %s)", got, want, canonical)
	}
}

// FuzzParseProof feeds query strings to parseProof: it must never panic, refuse with
// 400 only, and accept only canonical proofs.
func FuzzParseProof(f *testing.F) {
	key := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{0x2a}, 32))
	k1 := bytes.Repeat([]byte{0x11}, 32)
	sig := hex.EncodeToString(ecdsa.Sign(key, k1).Serialize())
	valid := query("tag", "login", "k1", hex.EncodeToString(k1), "sig", sig, "key", keyHex(key))
	f.Add(valid)
	f.Add(strings.ToUpper(valid))
	f.Add(valid + "&tag=login")
	f.Add(valid + "%")
	f.Add(strings.Replace(valid, "key=02", "key=04", 1))
	f.Add(strings.Replace(valid, "sig=30", "sig=31", 1))
	f.Add("")
	f.Add("tag=login&k1=&sig=&key=")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		p, err := parseProof(rawQuery)
		if err != nil {
			r, ok := err.(*refusal)
			if !ok || r.status != 400 || r.reason == "" {
				t.Fatalf("parseProof(%q) = %v, want a 400 refusal", rawQuery, err)
			}
			return
		}
		q, _ := url.ParseQuery(rawQuery)
		if q.Get("tag") != "login" ||
			!strings.EqualFold(q.Get("k1"), hex.EncodeToString(p.k1[:])) ||
			!strings.EqualFold(q.Get("sig"), hex.EncodeToString(p.sig.Serialize())) ||
			!strings.EqualFold(q.Get("key"), hex.EncodeToString(p.key.SerializeCompressed())) {
			t.Fatalf("parseProof(%q) accepted a proof that does not round-trip", rawQuery)
		}
	})
}
