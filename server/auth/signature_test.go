package auth

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/govss/vss/client/sigauth"
)

// The contract's test vector: secret key 32 bytes of 0x2a, time 1700000000.
const (
	vectorHeader = "035be5e9478209674a96e60f1f037f6176540fd001fa1d64694770c56a7709c42c" +
		"facd4f04afbbcd95d4bc143df56507f6407bd2a981ca10f216eb8888f7ceb7117795ae377c33e6304af9c82f07e76408c9e846214fd4126e5f771626852e0d80" +
		"1700000000"
	vectorUser = "035be5e9478209674a96e60f1f037f6176540fd001fa1d64694770c56a7709c42c"
	vectorTime = 1700000000
)

// vectorKey is the contract vector's secret key.
func vectorKey() *secp256k1.PrivateKey {
	return secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{0x2a}, 32))
}

// fixedClock returns a clock stopped at the UNIX time sec.
func fixedClock(sec int64) func() time.Time {
	return func() time.Time { return time.Unix(sec, 0) }
}

func TestSigningConstantIs64Bytes(t *testing.T) {
	t.Parallel()
	if len(SigningConstant) != 64 || !strings.HasPrefix(SigningConstant, "VSS Signature Authorizer Signing Salt Constant.") ||
		strings.Trim(SigningConstant[len("VSS Signature Authorizer Signing Salt Constant"):], ".") != "" {
		t.Fatalf("SigningConstant = %q (%d bytes)", SigningConstant, len(SigningConstant))
	}
}

func TestSignatureHeaderReproducesVector(t *testing.T) {
	t.Parallel()
	if got := SignatureHeader(vectorKey(), time.Unix(vectorTime, 0)); got != vectorHeader {
		t.Fatalf("SignatureHeader =\n%s\nwant\n%s", got, vectorHeader)
	}
}

func TestSignatureVectorClock(t *testing.T) {
	t.Parallel()
	day := int64(24 * 60 * 60)
	tests := []struct {
		name  string
		clock int64
		want  string // "" accepts
	}{
		{"same second", vectorTime, ""},
		{"server 3s ahead", vectorTime + 3, ""},
		{"server 3s behind", vectorTime - 3, ""},
		{"exactly 24h old", vectorTime + day, ""},
		{"exactly 24h ahead", vectorTime - day, ""},
		{"24h+1s old", vectorTime + day + 1, "more than 24 hours in the past"},
		{"24h+1s ahead", vectorTime - day - 1, "more than 24 hours in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user, err := authorize(NewSignature(fixedClock(tt.clock)), vectorHeader)
			if tt.want == "" {
				if err != nil || user != vectorUser {
					t.Fatalf("Authorize = %q, %v; want %q", user, err, vectorUser)
				}
				return
			}
			if msg := authMessage(t, err); !strings.Contains(msg, tt.want) {
				t.Fatalf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
}

func TestSignatureRoundTripRandomKeys(t *testing.T) {
	t.Parallel()
	for i := 0; i < 20; i++ {
		priv, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		at := time.Unix(1_600_000_000+int64(i)*1_000_003, 0)
		header := SignatureHeader(priv, at)
		user, err := authorize(NewSignature(func() time.Time { return at.Add(time.Minute) }), header)
		want := hex.EncodeToString(priv.PubKey().SerializeCompressed())
		if err != nil || user != want {
			t.Fatalf("key %d: Authorize(%s) = %q, %v; want %q", i, header, user, err, want)
		}
	}
}

func TestSignatureUppercaseHexIsTheSameUser(t *testing.T) {
	t.Parallel()
	a := NewSignature(fixedClock(vectorTime))
	for _, header := range []string{
		strings.ToUpper(vectorHeader),
		strings.ToUpper(vectorHeader[:66]) + vectorHeader[66:],
		vectorHeader[:66] + strings.ToUpper(vectorHeader[66:]),
	} {
		user, err := authorize(a, header)
		if err != nil || user != vectorUser {
			t.Fatalf("Authorize(%s) = %q, %v; want %q", header, user, err, vectorUser)
		}
	}
}

// highS returns the vector header with s replaced by n - s: the same signature in its
// malleated, high-S form.
func highS(t *testing.T) (header string, sig *ecdsa.Signature) {
	t.Helper()
	raw, err := hex.DecodeString(vectorHeader[66:194])
	if err != nil {
		t.Fatal(err)
	}
	var r, s secp256k1.ModNScalar
	r.SetByteSlice(raw[:32])
	s.SetByteSlice(raw[32:])
	s.Negate()
	sb := s.Bytes()
	return vectorHeader[:66] + hex.EncodeToString(raw[:32]) + hex.EncodeToString(sb[:]) + vectorHeader[194:], ecdsa.NewSignature(&r, &s)
}

// TestSignatureHighS documents why the authorizer checks low-S itself: the decred
// verifier accepts the malleated signature, libsecp256k1 (the reference server) does not.
func TestSignatureHighS(t *testing.T) {
	t.Parallel()
	header, sig := highS(t)
	pub := vectorKey().PubKey()
	if !sig.Verify(sigauth.Digest(pub.SerializeCompressed(), "1700000000"), pub) {
		t.Fatal("decred's Verify rejects the high-S signature; the explicit low-S check may no longer be needed")
	}
	msg := authMessage(t, mustFail(authorize(NewSignature(fixedClock(vectorTime)), header)))
	if !strings.Contains(msg, "low-S") {
		t.Fatalf("message %q does not mention low-S", msg)
	}
}

// mustFail turns an unexpected success into an error for authMessage to report.
func mustFail(user string, err error) error {
	if err == nil {
		return &unexpectedSuccess{user}
	}
	return err
}

// unexpectedSuccess is the error mustFail makes of a success.
type unexpectedSuccess struct{ user string }

func (e *unexpectedSuccess) Error() string { return "accepted as user " + e.user }

func TestSignatureRejects(t *testing.T) {
	t.Parallel()
	pub, sig, ts := vectorHeader[:66], vectorHeader[66:194], vectorHeader[194:]
	other, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherHeader := SignatureHeader(other, time.Unix(vectorTime, 0))
	high, _ := highS(t)
	// An x coordinate with no point on the curve: x^3 + 7 is not a square mod p.
	var offCurve string
	for x := byte(1); ; x++ {
		b := make([]byte, 33)
		b[0], b[32] = 0x02, x
		if _, err := secp256k1.ParsePubKey(b); err != nil {
			offCurve = hex.EncodeToString(b)
			break
		}
	}
	replaceAt := func(s string, i int, c string) string { return s[:i] + c + s[i+len(c):] }

	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"no header", nil, "missing Authorization header"},
		{"empty header", []string{""}, "missing Authorization header"},
		{"two headers", []string{vectorHeader, vectorHeader}, "more than one Authorization header"},
		{"bearer token", []string{"Bearer abc.def.ghi"}, "bearer tokens are not accepted"},
		{"no time", []string{pub + sig}, "too short"},
		{"truncated", []string{vectorHeader[:150]}, "too short"},
		{"20-digit time", []string{pub + sig + "17000000000000000000"}, "too long"},
		{"non-ASCII", []string{replaceAt(vectorHeader, 10, "é")}, "spaces, control or non-ASCII"},
		{"control character", []string{replaceAt(vectorHeader, 10, "\x01")}, "spaces, control or non-ASCII"},
		{"space in time", []string{pub + sig + "1700 00000"}, "spaces, control or non-ASCII"},
		{"non-hex public key", []string{replaceAt(vectorHeader, 10, "g")}, "public key in the Authorization header is not hexadecimal"},
		{"non-hex signature", []string{replaceAt(vectorHeader, 100, "z")}, "signature in the Authorization header is not hexadecimal"},
		{"uncompressed prefix", []string{"04" + pub[2:] + sig + ts}, "must start with 02 or 03"},
		{"zero prefix", []string{"00" + pub[2:] + sig + ts}, "must start with 02 or 03"},
		{"x not on curve", []string{offCurve + sig + ts}, "not a point on the secp256k1 curve"},
		{"x above field prime", []string{"02" + strings.Repeat("ff", 32) + sig + ts}, "not a point on the secp256k1 curve"},
		{"zero signature", []string{pub + strings.Repeat("0", 128) + ts}, "r or s is zero"},
		{"zero s", []string{pub + sig[:64] + strings.Repeat("0", 64) + ts}, "r or s is zero"},
		{"r above order", []string{pub + strings.Repeat("f", 64) + sig[64:] + ts}, "not below the curve order"},
		{"high S", []string{high}, "low-S"},
		{"signed by another key", []string{pub + otherHeader[66:]}, "does not verify"},
		{"tampered time", []string{pub + sig + "1700000001"}, "does not verify"},
		{"leading zero time", []string{pub + sig + "01700000000"}, "does not verify"},
		{"leading plus", []string{pub + sig + "+700000000"}, "not a decimal number"},
		{"negative time", []string{pub + sig + "-1700000000"}, "not a decimal number"},
		{"hex time", []string{pub + sig + "65536a00"}, "not a decimal number"},
		{"float time", []string{pub + sig + "1.7e9"}, "not a decimal number"},
		{"time beyond int64", []string{pub + sig + "9999999999999999999"}, "in the future"},
		{"time zero", []string{pub + sig + "0"}, "in the past"},
	}
	a := NewSignature(fixedClock(vectorTime))
	seen := map[string]string{} // message -> want
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := authMessage(t, mustFail(authorize(a, tt.values...)))
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("message %q does not contain %q", msg, tt.want)
			}
			if strings.Contains(msg, sig) || strings.Contains(msg, pub) {
				t.Fatalf("message %q echoes the credentials", msg)
			}
			if prev, ok := seen[msg]; ok && prev != tt.want {
				t.Fatalf("message %q is shared by two different failures (%q and %q)", msg, prev, tt.want)
			}
			seen[msg] = tt.want
		})
	}
}

func TestNewSignatureNilClockUsesNow(t *testing.T) {
	t.Parallel()
	header := SignatureHeader(vectorKey(), time.Now())
	if user, err := authorize(NewSignature(nil), header); err != nil || user != vectorUser {
		t.Fatalf("Authorize = %q, %v", user, err)
	}
}
