package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readTestdata returns a file of testdata/.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The testdata PEM files were written by OpenSSL 3 (`openssl pkey -pubout` and
// `openssl rsa -RSAPublicKey_out`); the private keys were discarded.
func TestParsePublicKeysOpenSSLFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		alg  string
	}{
		{"rsa2048-spki.pem", algRS256},
		{"rsa2048-pkcs1.pem", algRS256},
		{"ec-p256-spki.pem", algES256},
		{"ed25519-spki.pem", algEdDSA},
	}
	for _, tt := range tests {
		keys, err := ParsePublicKeys(readTestdata(t, tt.file))
		if err != nil || len(keys) != 1 {
			t.Fatalf("%s: ParsePublicKeys = %d keys, %v", tt.file, len(keys), err)
		}
		if alg, _, err := verificationKey(keys[0]); err != nil || alg != tt.alg {
			t.Errorf("%s: alg %q, %v; want %q", tt.file, alg, err, tt.alg)
		}
	}

	// The SPKI and PKCS#1 files hold the same key.
	spki, _ := ParsePublicKeys(readTestdata(t, "rsa2048-spki.pem"))
	pkcs1, _ := ParsePublicKeys(readTestdata(t, "rsa2048-pkcs1.pem"))
	if !spki[0].(*rsa.PublicKey).Equal(pkcs1[0]) {
		t.Error("SPKI and PKCS#1 forms of one key parse to different keys")
	}
}

func TestParsePublicKeysSeveralBlocks(t *testing.T) {
	t.Parallel()
	keys := newTestKeys(t)
	var file []byte
	file = append(file, "# keys trusted by the VSS server\n"...)
	for _, k := range keys.public() {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
		file = append(file, "\nsome commentary between blocks\n"...)
	}
	file = append(file, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey)})...)
	file = append(file, readTestdata(t, "ec-p256-spki.pem")...)

	got, err := ParsePublicKeys(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("got %d keys, want 5", len(got))
	}
	if !got[0].(*rsa.PublicKey).Equal(&keys.rsa.PublicKey) || !got[1].(*ecdsa.PublicKey).Equal(&keys.ec.PublicKey) ||
		!got[2].(ed25519.PublicKey).Equal(keys.ed.Public()) || !got[3].(*rsa.PublicKey).Equal(&keys.rsa.PublicKey) {
		t.Fatal("parsed keys differ from the encoded ones")
	}
}

func TestParsePublicKeysRejects(t *testing.T) {
	t.Parallel()
	good := readTestdata(t, "ec-p256-spki.pem")
	small := newRSA(t, 1024)
	smallPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&small.PublicKey)})
	privDER, err := x509.MarshalPKCS8PrivateKey(newEC(t))
	if err != nil {
		t.Fatal(err)
	}
	private := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no PEM public key found"},
		{"no PEM", []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... user@host"), "no PEM public key found"},
		{"1024-bit RSA SPKI", readTestdata(t, "rsa1024-spki.pem"), "RSA key has 1024 bits; at least 2048 are required"},
		{"1024-bit RSA PKCS#1", smallPKCS1, "RSA key has 1024 bits; at least 2048 are required"},
		{"1024-bit RSA after a good key", append(append([]byte{}, good...), smallPKCS1...), "PEM block 2: RSA key has 1024 bits"},
		{"P-384", readTestdata(t, "ec-p384-spki.pem"), "only P-256"},
		{"X25519", readTestdata(t, "x25519-spki.pem"), "unsupported key type"},
		{"private key", private, `PEM block 1 is a "PRIVATE KEY"`},
		{"certificate", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), `is a "CERTIFICATE"`},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("not DER")}), "PEM block 1 (PUBLIC KEY)"},
		{"truncated block", append(append([]byte{}, good...), good[:len(good)-30]...), "malformed PEM block after 1 valid key"},
	}
	for _, tt := range tests {
		keys, err := ParsePublicKeys(tt.data)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParsePublicKeys = %d keys, %v; want an error containing %q", tt.name, len(keys), err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: error %q contains key material", tt.name, err)
		}
	}
}
