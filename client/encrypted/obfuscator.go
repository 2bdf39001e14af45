package encrypted

import (
	"crypto/cipher"
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes of ChaCha20-Poly1305 (RFC 8439) as vss-client-ng uses it.
const (
	nonceSize = chacha20poly1305.NonceSize // 12
	tagSize   = chacha20poly1305.Overhead  // 16
)

// rawStd is base64 with the standard alphabet and no padding, strict about trailing
// bits, as vss-client-ng's BASE64_STANDARD_NO_PAD.
var rawStd = base64.RawStdEncoding.Strict()

// KeyObfuscator hides key names, deterministically, exactly as vss-client-ng's
// KeyObfuscator (crate 0.6.0, src/util/key_obfuscator.rs): the same name always gives
// the same obfuscated name, so a key can be read back by its name, and the server learns
// only the names' lengths and which writes hit the same key.
//
// From the master key it derives (with the one-step hkdf of LDK Node, see
// KeysFromVSSSeed) prk = hkdf(master, "pseudo_random_key"), an obfuscation key
// k1 = hkdf(prk, "obfuscation_key") and a hashing key k2 = hkdf(prk, k1 || "hashing_key").
// A name is encrypted with ChaCha20-Poly1305 under k1 with a synthetic nonce (four zero
// bytes then the first 8 bytes of hkdf(k2, name)), and that nonce is itself encrypted
// under k1 with the synthetic nonce of the name's ciphertext; the obfuscated name is
// base64 (standard alphabet, no padding) of ciphertext || tag || wrapped nonce || its tag.
// A KeyObfuscator is safe for concurrent use.
type KeyObfuscator struct {
	hashingKey [32]byte
	aead       cipher.AEAD
}

// NewKeyObfuscator returns the obfuscator of a master key (Keys.ObfuscationMasterKey).
func NewKeyObfuscator(masterKey [32]byte) *KeyObfuscator {
	prk := hkdf(masterKey[:], []byte("pseudo_random_key"))
	k1 := hkdf(prk[:], []byte("obfuscation_key"))
	k2 := hkdf(prk[:], append(k1[:], "hashing_key"...))
	aead, err := chacha20poly1305.New(k1[:])
	if err != nil {
		panic("encrypted: " + err.Error()) // a 32-byte key is always accepted
	}
	return &KeyObfuscator{hashingKey: k2, aead: aead}
}

// syntheticNonce is vss-client-ng's generate_synthetic_nonce: four zero bytes, then the
// first 8 bytes of hkdf(hashingKey, material) = HMAC-SHA256(key=material, hashingKey).
func (o *KeyObfuscator) syntheticNonce(material []byte) [nonceSize]byte {
	h := hkdf(o.hashingKey[:], material)
	var n [nonceSize]byte
	copy(n[4:], h[:8])
	return n
}

// Obfuscate returns the obfuscated name of key.
func (o *KeyObfuscator) Obfuscate(key string) string {
	out := make([]byte, 0, len(key)+tagSize+nonceSize+tagSize)
	nonce := o.syntheticNonce([]byte(key))
	out = o.aead.Seal(out, nonce[:], []byte(key), nil) // ciphertext || tag
	wrap := o.syntheticNonce(out[:len(key)])
	out = o.aead.Seal(out, wrap[:], nonce[:], nil) // wrapped nonce || tag
	return rawStd.EncodeToString(out)
}

// Deobfuscate returns the name an obfuscated name stands for. A name that is not base64,
// too short, fails either tag (another master key, or altered) or is not UTF-8 is a
// *VerificationError of KindFormat.
func (o *KeyObfuscator) Deobfuscate(obfuscated string) (string, error) {
	// Go's decoder skips line breaks, vss-client-ng's refuses them.
	if strings.ContainsAny(obfuscated, "\r\n") {
		return "", formatError(obfuscated, "the key is not base64")
	}
	b, err := rawStd.DecodeString(obfuscated)
	if err != nil {
		return "", formatError(obfuscated, "the key is not base64")
	}
	if len(b) < tagSize+nonceSize+tagSize {
		return "", formatError(obfuscated, "the key is too short to be an obfuscated key")
	}
	sealed := b[:len(b)-nonceSize-tagSize]  // ciphertext || tag
	wrapped := b[len(b)-nonceSize-tagSize:] // wrapped nonce || tag
	ciphertext := sealed[:len(sealed)-tagSize]
	wrap := o.syntheticNonce(ciphertext)
	nonce, err := o.aead.Open(nil, wrap[:], wrapped, nil)
	if err != nil {
		return "", formatError(obfuscated, "the key does not deobfuscate with these keys (its nonce tag does not verify)")
	}
	plain, err := o.aead.Open(nil, nonce, sealed, nil)
	if err != nil {
		return "", formatError(obfuscated, "the key does not deobfuscate with these keys (its tag does not verify)")
	}
	if !utf8.Valid(plain) {
		return "", formatError(obfuscated, "the deobfuscated key is not UTF-8")
	}
	return string(plain), nil
}
