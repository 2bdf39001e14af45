package encrypted

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"strconv"

	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// CipherFormat is the cipher name a sealed value's metadata carries.
const CipherFormat = "ChaCha20Poly1305"

// Sealer seals values exactly as vss-client-ng's StorableBuilder (crate 0.6.0,
// src/util/storable_builder.rs): the value and a version, as a protobuf PlaintextBlob,
// are encrypted with ChaCha20-Poly1305 (RFC 8439) under the data encryption key with a
// random 12-byte nonce and the caller's associated data; the stored bytes are the
// protobuf Storable holding the ciphertext and its metadata (cipher name, nonce, 16-byte
// tag). A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns the sealer of a data encryption key (Keys.DataEncryptionKey).
func NewSealer(dataEncryptionKey [32]byte) *Sealer {
	aead, err := chacha20poly1305.New(dataEncryptionKey[:])
	if err != nil {
		panic("encrypted: " + err.Error()) // a 32-byte key is always accepted
	}
	return &Sealer{aead: aead}
}

// Seal returns the stored form (an encoded Storable) of value and version, bound to
// aad, with a nonce from crypto/rand.
func (s *Sealer) Seal(value []byte, version int64, aad []byte) []byte {
	var nonce [nonceSize]byte
	rand.Read(nonce[:]) // never fails (crypto/rand, Go 1.24 and later)
	return s.SealWithNonce(nonce, value, version, aad)
}

// SealWithNonce is Seal with a given nonce, for known-answer tests. A nonce must never
// be used twice with the same key: use Seal.
func (s *Sealer) SealWithNonce(nonce [nonceSize]byte, value []byte, version int64, aad []byte) []byte {
	// The Storable is encoded around the blob, which is encrypted in place, so that the
	// value is copied once: {1: data (omitted when empty, as proto3 does), 2: metadata
	// {1: cipher format, 2: nonce, 3: tag}}, the bytes proto.Marshal gives (the known
	// answers check it).
	blob := &vssv1.PlaintextBlob{Value: value, Version: version}
	n := proto.Size(blob)
	out := make([]byte, 0, 1+protowire.SizeVarint(uint64(n))+n+tagSize+2+metadataSize)
	if n > 0 {
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(n))
	}
	start := len(out)
	out, err := proto.MarshalOptions{}.MarshalAppend(out, blob)
	if err != nil || len(out) != start+n {
		panic(fmt.Sprintf("encrypted: encode PlaintextBlob: %v", err)) // bytes and an int64 always encode
	}
	sealed := s.aead.Seal(out[start:start], nonce[:], out[start:], aad) // ciphertext || tag, in place
	var tag [tagSize]byte
	copy(tag[:], sealed[n:])
	out = out[:start+n]
	out = protowire.AppendTag(out, 2, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(metadataSize))
	out = protowire.AppendTag(out, 1, protowire.BytesType)
	out = protowire.AppendString(out, CipherFormat)
	out = protowire.AppendTag(out, 2, protowire.BytesType)
	out = protowire.AppendBytes(out, nonce[:])
	out = protowire.AppendTag(out, 3, protowire.BytesType)
	return protowire.AppendBytes(out, tag[:])
}

// metadataSize is the size of the encoded EncryptionMetadata: three fields of one-byte
// tag and length.
const metadataSize = 2 + len(CipherFormat) + 2 + nonceSize + 2 + tagSize

// Open verifies and opens a stored value sealed with aad, and returns the value and the
// version sealed with it. Anything that does not verify is a *VerificationError (with
// an empty Key): KindFormat for bytes no writer produces, KindAuthentication when the
// tag does not verify (tampered, another key, or other associated data).
func (s *Sealer) Open(stored, aad []byte) (value []byte, version int64, err error) {
	var st vssv1.Storable
	if err := proto.Unmarshal(stored, &st); err != nil {
		return nil, 0, formatError("", "the value is not a Storable")
	}
	md := st.GetEncryptionMetadata()
	switch {
	case md == nil:
		return nil, 0, formatError("", "the value has no encryption metadata")
	case md.GetCipherFormat() != CipherFormat:
		return nil, 0, formatError("", "unknown cipher format "+quote(md.GetCipherFormat()))
	case len(md.GetNonce()) != nonceSize:
		return nil, 0, formatError("", "the nonce is not 12 bytes")
	case len(md.GetTag()) != tagSize:
		return nil, 0, formatError("", "the tag is not 16 bytes")
	}
	data := append(st.GetData(), md.GetTag()...)
	blob, err := s.aead.Open(data[:0], md.GetNonce(), data, aad)
	if err != nil {
		return nil, 0, &VerificationError{Kind: KindAuthentication,
			Reason: "the tag does not verify: the value was altered, sealed with another key, or stored under another key"}
	}
	var pb vssv1.PlaintextBlob
	if err := proto.Unmarshal(blob, &pb); err != nil {
		return nil, 0, formatError("", "the decrypted value is not a PlaintextBlob")
	}
	value = pb.GetValue()
	if value == nil {
		value = []byte{}
	}
	return value, pb.GetVersion(), nil
}

// quote returns s quoted in ASCII, cut to 40 bytes: a reason must stay short.
func quote(s string) string {
	if len(s) > 40 {
		return strconv.QuoteToASCII(s[:40]) + "…"
	}
	return strconv.QuoteToASCII(s)
}
