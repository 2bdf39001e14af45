package encrypted_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/govss/vss/client/encrypted"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// The known answers of vss-client-ng 0.6.0's own tests (src/util/key_obfuscator.rs and
// src/util/storable_builder.rs).

func fill(b byte) (k [32]byte) {
	for i := range k {
		k[i] = b
	}
	return k
}

func TestKeyObfuscatorKnownAnswers(t *testing.T) {
	t.Parallel()
	o := encrypted.NewKeyObfuscator(fill(42))
	const want = "cMoet5WTvl0nYds+VW7JPCtXUq24DtMG2dR9apAi/T5jy8eNIEyDrUAJBS4geeUuX+XGXPqlizIByOip2g"
	if got := o.Obfuscate("a_semi_secret_key"); got != want {
		t.Errorf("Obfuscate = %s, want %s", got, want)
	}
	if got, err := o.Deobfuscate(want); err != nil || got != "a_semi_secret_key" {
		t.Errorf("Deobfuscate = %q, %v", got, err)
	}
	// A key obfuscated by vss-client-ng 0.3.1.
	old := encrypted.NewKeyObfuscator(fill(0xAB))
	got, err := old.Deobfuscate("nxrixRQPGawY+a9JFLThii0RgeADtEdSjh2YDgpZhBKOuw6GKr5UAIIwsQCathJlZsmuSku+RGB1/JuxFUMQGoAwa+M8tg")
	if err != nil || got != "my_storage_key_v031_compat" {
		t.Errorf("Deobfuscate(0.3.1 key) = %q, %v", got, err)
	}
}

func TestKeyObfuscatorRoundTrip(t *testing.T) {
	t.Parallel()
	o := encrypted.NewKeyObfuscator(fill(7))
	for _, key := range []string{"", "a", "monitors/abc#1", strings.Repeat("k", 600), "ünïcødé \t\n\r", "#"} {
		ob := o.Obfuscate(key)
		if ob != o.Obfuscate(key) {
			t.Errorf("Obfuscate(%q) is not deterministic", key)
		}
		if strings.ContainsAny(ob, "#=") {
			t.Errorf("Obfuscate(%q) = %q has '#' or padding", key, ob)
		}
		if got, err := o.Deobfuscate(ob); err != nil || got != key {
			t.Errorf("Deobfuscate(Obfuscate(%q)) = %q, %v", key, got, err)
		}
	}
}

func TestDeobfuscateRefuses(t *testing.T) {
	t.Parallel()
	o := encrypted.NewKeyObfuscator(fill(42))
	good := o.Obfuscate("a_semi_secret_key")
	flip := []byte(good)
	flip[3] ^= 1 // still base64: 'e' <-> 'd'
	for name, in := range map[string]string{
		"not base64":     "not base64!",
		"padded":         good + "==",
		"line break":     good[:10] + "\n" + good[10:],
		"too short":      good[:40],
		"altered":        string(flip),
		"other keys":     encrypted.NewKeyObfuscator(fill(43)).Obfuscate("a_semi_secret_key"),
		"trailing bits":  good[:len(good)-1] + "h", // 'g' ends in 00 bits, 'h' does not
		"plain key name": "channel_manager",
	} {
		_, err := o.Deobfuscate(in)
		var v *encrypted.VerificationError
		if !errors.As(err, &v) || v.Kind != encrypted.KindFormat || v.Key != in {
			t.Errorf("%s: Deobfuscate(%q) = %v, want a FORMAT VerificationError for that key", name, in, err)
		}
	}
}

// v031Storable is a value vss-client-ng 0.3.1 sealed: "backward_compat_test_data",
// version 42, key 0x00..0x1f, empty associated data.
const v031Storable = "0a1d3219e9fb45d742f56c401b7413e7ae07fd81e1433af2863ce88f01f86c12320a1043686143686132305" +
	"06f6c7931333035120c0000000000010203040506071a1087163502261e30ec7cf14b7970a24116"

func counterKey() (k [32]byte) {
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func TestSealerKnownAnswer(t *testing.T) {
	t.Parallel()
	stored, _ := hex.DecodeString(v031Storable)
	s := encrypted.NewSealer(counterKey())
	value, version, err := s.Open(stored, nil)
	if err != nil || string(value) != "backward_compat_test_data" || version != 42 {
		t.Fatalf("Open = %q, %d, %v", value, version, err)
	}
	// Sealing the same with the same nonce gives the same bytes: the encoding is the crate's.
	nonce := [12]byte{0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7}
	if got := s.SealWithNonce(nonce, []byte("backward_compat_test_data"), 42, nil); !bytes.Equal(got, stored) {
		t.Errorf("SealWithNonce = %x, want %x", got, stored)
	}
}

func TestSealerRoundTripAndRefusals(t *testing.T) {
	t.Parallel()
	s := encrypted.NewSealer(counterKey())
	for _, c := range []struct {
		value   []byte
		version int64
	}{{nil, 0}, {[]byte("secret"), 8}, {bytes.Repeat([]byte{1}, 1<<20), -1}} {
		stored := s.Seal(c.value, c.version, []byte("A"))
		value, version, err := s.Open(stored, []byte("A"))
		if err != nil || !bytes.Equal(value, c.value) || version != c.version {
			t.Errorf("round trip of %d bytes, version %d: %d bytes, %d, %v", len(c.value), c.version, len(value), version, err)
		}
		if value == nil {
			t.Error("Open returned a nil value")
		}
	}
	a, b := s.Seal([]byte("x"), 1, []byte("A")), s.Seal([]byte("x"), 1, []byte("A"))
	if bytes.Equal(a, b) {
		t.Error("two seals of the same value are equal: the nonce is not random")
	}

	stored := s.Seal([]byte("secret"), 8, []byte("A"))
	tampered := bytes.Clone(stored)
	tampered[3] ^= 1 // inside the ciphertext
	st := mustStorable(t, stored)
	for name, c := range map[string]struct {
		stored []byte
		aad    string
		key    [32]byte
		kind   encrypted.Kind
	}{
		"other associated data": {stored, "B", counterKey(), encrypted.KindAuthentication},
		"other key":             {stored, "A", fill(1), encrypted.KindAuthentication},
		"altered ciphertext":    {tampered, "A", counterKey(), encrypted.KindAuthentication},
		"not a Storable":        {[]byte{0xff, 0xff}, "A", counterKey(), encrypted.KindFormat},
		"plain bytes":           {[]byte("hello"), "A", counterKey(), encrypted.KindFormat},
		"no metadata":           {st.without("metadata"), "A", counterKey(), encrypted.KindFormat},
		"other cipher":          {st.without("cipher"), "A", counterKey(), encrypted.KindFormat},
		"short nonce":           {st.without("nonce"), "A", counterKey(), encrypted.KindFormat},
		"short tag":             {st.without("tag"), "A", counterKey(), encrypted.KindFormat},
	} {
		value, _, err := encrypted.NewSealer(c.key).Open(c.stored, []byte(c.aad))
		var v *encrypted.VerificationError
		if !errors.As(err, &v) || v.Kind != c.kind || value != nil {
			t.Errorf("%s: Open = %q, %v; want a %v VerificationError", name, value, err, c.kind)
		}
	}
}

func TestKeysDerivation(t *testing.T) {
	t.Parallel()
	seed := bytes.Repeat([]byte{1}, encrypted.WalletSeedSize)
	k1, err := encrypted.KeysFromWalletSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := encrypted.VSSSeed(seed)
	if k1 != encrypted.KeysFromVSSSeed(vs) {
		t.Error("KeysFromWalletSeed != KeysFromVSSSeed(VSSSeed)")
	}
	if k1.DataEncryptionKey == k1.ObfuscationMasterKey || k1 == encrypted.KeysFromVSSSeed([32]byte{}) {
		t.Error("the keys are degenerate")
	}
	for _, n := range []int{0, 15, 65} {
		if _, err := encrypted.KeysFromWalletSeed(make([]byte, n)); err == nil {
			t.Errorf("a %d-byte seed was accepted", n)
		}
	}
	const r = "encrypted.Keys{redacted}"
	if got := fmt.Sprintf("%v|%+v|%#v|%s", k1, k1, k1, &k1); got != r+"|"+r+"|"+r+"|"+r {
		t.Errorf("Keys print as %q", got)
	}
}

// storable is a sealed value to take parts away from.
type storable struct {
	t *testing.T
	m *vssv1.Storable
}

func mustStorable(t *testing.T, b []byte) storable {
	t.Helper()
	var m vssv1.Storable
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return storable{t, &m}
}

// without returns the encoded Storable with one part removed or spoiled.
func (s storable) without(part string) []byte {
	m := proto.Clone(s.m).(*vssv1.Storable)
	md := m.GetEncryptionMetadata()
	switch part {
	case "metadata":
		m.EncryptionMetadata = nil
	case "cipher":
		md.CipherFormat = "AES256GCM"
	case "nonce":
		md.Nonce = md.Nonce[:8]
	case "tag":
		md.Tag = md.Tag[:15]
	}
	b, err := proto.Marshal(m)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}
