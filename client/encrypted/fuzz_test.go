package encrypted

import (
	"bytes"
	"errors"
	"testing"
)

// The decoders of what a server returns: they must never panic, and fail only with a
// VerificationError. The seed corpus (the shared vectors' cases) runs in every go test.

func FuzzOpen(f *testing.F) {
	v, err := loadVectorsFile()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range v.Sealed {
		f.Add([]byte(c.Storable), []byte(c.AAD))
	}
	for _, c := range v.NegativeStorables {
		f.Add([]byte(c.Storable), []byte(c.AAD))
	}
	s := NewSealer(v.Keys.DataEncryptionKey.Key32())
	f.Fuzz(func(t *testing.T, stored, aad []byte) {
		in := bytes.Clone(stored)
		value, _, err := s.Open(stored, aad)
		var ve *VerificationError
		if err != nil && (!errors.As(err, &ve) || value != nil) {
			t.Fatalf("Open: %v (%d bytes returned)", err, len(value))
		}
		if !bytes.Equal(in, stored) {
			t.Fatal("Open changed its input")
		}
	})
}

func FuzzDeobfuscate(f *testing.F) {
	v, err := loadVectorsFile()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range v.ObfuscatedKeys {
		f.Add(c.Obfuscated)
	}
	for _, c := range v.NegativeKeys {
		f.Add(c.Obfuscated)
	}
	o := NewKeyObfuscator(v.Keys.ObfuscationMasterKey.Key32())
	f.Fuzz(func(t *testing.T, obfuscated string) {
		key, err := o.Deobfuscate(obfuscated)
		var ve *VerificationError
		switch {
		case err != nil && !errors.As(err, &ve):
			t.Fatalf("Deobfuscate: %v", err)
		case err == nil && o.Obfuscate(key) != obfuscated:
			t.Fatalf("Deobfuscate(%q) = %q, which obfuscates otherwise", obfuscated, key)
		}
	})
}
