package encrypted

import (
	"encoding/hex"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
)

// TestDeriveBIP32 checks the BIP32 derivation against BIP32's test vector 1: the
// extended private key of m/0' of the seed 000102…0f.
func TestDeriveBIP32(t *testing.T) {
	t.Parallel()
	seed, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	got, err := derive(seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	xprv, err := hdkeychain.NewKeyFromString("xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := xprv.ECPrivKey()
	if hex.EncodeToString(got.Serialize()) != hex.EncodeToString(want.Serialize()) ||
		hex.EncodeToString(got.Serialize()) != "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea" {
		t.Errorf("m/0' = %x, want %x", got.Serialize(), want.Serialize())
	}
}

func TestLDKSchemaEncoding(t *testing.T) {
	t.Parallel()
	for _, s := range []LDKSchema{LDKSchemaV0, LDKSchemaV1} {
		got, err := decodeLDKSchema(encodeLDKSchema(s))
		if err != nil || got != s {
			t.Errorf("%v: decoded %v, %v", s, got, err)
		}
	}
	for _, b := range [][]byte{nil, {1}, {2, 0}} {
		if _, err := decodeLDKSchema(b); err == nil {
			t.Errorf("%x decoded", b)
		}
	}
}
