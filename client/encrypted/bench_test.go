package encrypted_test

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/govss/vss/client/encrypted"
)

// The client-side cost of one request, by the value sizes of vss-bench's scenarios:
// 512 B (startup), 1 KiB (put-small, get, put-cas, each put-batch item), 100 KiB
// (ldk-mix's channel manager) and 8 MiB (large). A put obfuscates its key and seals its
// value; a get obfuscates the key and opens and verifies the value.
var benchSizes = []int{512, 1 << 10, 100 << 10, 8 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func BenchmarkPut(b *testing.B) {
	keys := encrypted.KeysFromVSSSeed([32]byte{1})
	o, s := encrypted.NewKeyObfuscator(keys.ObfuscationMasterKey), encrypted.NewSealer(keys.DataEncryptionKey)
	for _, n := range benchSizes {
		value := make([]byte, n)
		rand.Read(value)
		b.Run(sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sk := o.Obfuscate("monitors/0123456789abcdef")
				_ = s.Seal(value, 7, []byte(sk))
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	keys := encrypted.KeysFromVSSSeed([32]byte{1})
	o, s := encrypted.NewKeyObfuscator(keys.ObfuscationMasterKey), encrypted.NewSealer(keys.DataEncryptionKey)
	for _, n := range benchSizes {
		value := make([]byte, n)
		rand.Read(value)
		sk := o.Obfuscate("monitors/0123456789abcdef")
		stored := s.Seal(value, 7, []byte(sk))
		b.Run(sizeName(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sk := o.Obfuscate("monitors/0123456789abcdef")
				if _, _, err := s.Open(stored, []byte(sk)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkListKey is the cost of each key a listing returns: its deobfuscation.
func BenchmarkListKey(b *testing.B) {
	o := encrypted.NewKeyObfuscator([32]byte{2})
	ob := o.Obfuscate("monitors/0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.Deobfuscate(ob); err != nil {
			b.Fatal(err)
		}
	}
}
