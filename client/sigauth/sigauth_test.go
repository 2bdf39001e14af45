package sigauth_test

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

// TestHeaderReproducesVector checks the contract's test vector: secret key 32 bytes of
// 0x2a, time 1700000000.
func TestHeaderReproducesVector(t *testing.T) {
	t.Parallel()
	const want = "035be5e9478209674a96e60f1f037f6176540fd001fa1d64694770c56a7709c42c" +
		"facd4f04afbbcd95d4bc143df56507f6407bd2a981ca10f216eb8888f7ceb7117795ae377c33e6304af9c82f07e76408c9e846214fd4126e5f771626852e0d80" +
		"1700000000"
	priv := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{0x2a}, 32))
	if got := sigauth.Header(priv, time.Unix(1700000000, 0)); got != want {
		t.Fatalf("Header =\n%s\nwant\n%s", got, want)
	}
}

func TestSigningConstantIs64Bytes(t *testing.T) {
	t.Parallel()
	const words = "VSS Signature Authorizer Signing Salt Constant"
	if len(sigauth.SigningConstant) != 64 || !strings.HasPrefix(sigauth.SigningConstant, words) ||
		strings.Trim(sigauth.SigningConstant[len(words):], ".") != "" {
		t.Fatalf("SigningConstant = %q (%d bytes)", sigauth.SigningConstant, len(sigauth.SigningConstant))
	}
}

// TestHeaderVerifies takes headers of random keys and times apart and verifies each
// signature against Digest, as the server does; the signature is always low-S.
func TestHeaderVerifies(t *testing.T) {
	t.Parallel()
	for i, at := range []int64{0, 1, 1700000000, 4102444800, 1<<63 - 1} {
		priv, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		h := sigauth.Header(priv, time.Unix(at, 0))
		pubHex, sigHex, timeStr := h[:sigauth.PubKeyHexLen], h[sigauth.PubKeyHexLen:sigauth.PubKeyHexLen+sigauth.SignatureHexLen], h[sigauth.PubKeyHexLen+sigauth.SignatureHexLen:]
		if len(timeStr) > sigauth.MaxTimeLen {
			t.Fatalf("case %d: time part %q is longer than %d", i, timeStr, sigauth.MaxTimeLen)
		}
		pubBytes, _ := hex.DecodeString(pubHex)
		if !bytes.Equal(pubBytes, priv.PubKey().SerializeCompressed()) {
			t.Fatalf("case %d: public key part %s is not the signer's key", i, pubHex)
		}
		sigBytes, _ := hex.DecodeString(sigHex)
		var r, s secp256k1.ModNScalar
		r.SetByteSlice(sigBytes[:32])
		s.SetByteSlice(sigBytes[32:])
		if s.IsOverHalfOrder() {
			t.Fatalf("case %d: signature is high-S", i)
		}
		if !ecdsa.NewSignature(&r, &s).Verify(sigauth.Digest(pubBytes, timeStr), priv.PubKey()) {
			t.Fatalf("case %d: signature of %q does not verify", i, h)
		}
	}
}
