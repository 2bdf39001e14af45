package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// testCA is a certificate authority made up for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate for 127.0.0.1 and localhost with the given serial
// number, and its PEM private key.
func (ca *testCA) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// writePair writes a certificate and key into dir/cert.pem and dir/key.pem.
func writePair(t *testing.T, dir string, certPEM, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Write to temporary names and rename, as certificate tools do, so that a handshake
	// never sees half a file.
	for _, f := range []struct {
		path string
		data []byte
	}{{certFile, certPEM}, {keyFile, keyPEM}} {
		if err := os.WriteFile(f.path+".tmp", f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".tmp", f.path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// servedSerial connects to addr afresh and returns the serial number of the
// certificate the server presents.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestServeTLS serves over TLS and checks that clients get HTTP/2 or HTTP/1.1 by ALPN,
// that a client that does not trust the certificate is refused, and that a renewed
// certificate is picked up without a restart.
func TestServeTLS(t *testing.T) {
	ca := newTestCA(t, "test CA")
	dir := t.TempDir()
	certPEM, keyPEM := ca.issue(t, 100)
	certFile, keyFile := writePair(t, dir, certPEM, keyPEM)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Listen: "127.0.0.1:0", DatabaseURL: MemoryURL, Auth: AuthConfig{Schemes: "none"},
			MaxBodyBytes: 1 << 20, ShutdownTimeout: 5 * time.Second,
			TLSCertFile: certFile, TLSKeyFile: keyFile,
			Ready: func(a net.Addr) { ready <- a },
		}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	var addr string
	select {
	case a := <-ready:
		addr = a.String()
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	for _, c := range []struct {
		name  string
		h2    bool
		proto int
	}{{"HTTP/2", true, 2}, {"HTTP/1.1", false, 1}} {
		t.Run(c.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}, ForceAttemptHTTP2: c.h2}
			if !c.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != c.proto {
				t.Fatalf("GET /healthz: %s over %s, want 200 over HTTP/%d", resp.Status, resp.Proto, c.proto)
			}
		})
	}

	t.Run("untrusted", func(t *testing.T) {
		other := newTestCA(t, "other CA")
		if conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: other.pool(), ServerName: "127.0.0.1"}); err == nil {
			conn.Close()
			t.Fatal("a client that trusts another CA completed the handshake")
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			t.Fatal("plain HTTP is served on the TLS port")
		}
	})

	t.Run("renewal", func(t *testing.T) {
		if got := servedSerial(t, addr, ca.pool()); got != 100 {
			t.Fatalf("serial %d, want 100", got)
		}
		certPEM, keyPEM := ca.issue(t, 101)
		writePair(t, dir, certPEM, keyPEM)
		deadline := time.Now().Add(10 * time.Second)
		for servedSerial(t, addr, ca.pool()) != 101 {
			if time.Now().After(deadline) {
				t.Fatal("the renewed certificate was not served within 10s")
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// TestCertReloaderSIGHUP checks that SIGHUP reloads the certificate at once, and that a
// broken pair of files keeps the previous certificate.
func TestCertReloaderSIGHUP(t *testing.T) {
	ca := newTestCA(t, "test CA")
	dir := t.TempDir()
	certPEM, keyPEM := ca.issue(t, 200)
	certFile, keyFile := writePair(t, dir, certPEM, keyPEM)
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		c, err := r.getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.Int64()
	}
	// Keep the change-of-files check from running, so that only SIGHUP can reload.
	noCheck := func() {
		r.mu.Lock()
		r.checked = time.Now().Add(time.Hour)
		r.mu.Unlock()
	}
	noCheck()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.watchSIGHUP(ctx)

	// A key that does not match the certificate: the reload fails, the old one stays.
	otherCert, _ := ca.issue(t, 201)
	writePair(t, dir, otherCert, keyPEM)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := serial(); got != 200 {
		t.Fatalf("after a broken reload: serial %d, want 200", got)
	}

	certPEM, keyPEM = ca.issue(t, 202)
	writePair(t, dir, certPEM, keyPEM)
	noCheck()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for serial() != 202 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTLSNeedsCertificateAndKey(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, cfg := range []Config{
		{TLSCertFile: "cert.pem"},
		{TLSKeyFile: "key.pem"},
		{TLSCertFile: filepath.Join(t.TempDir(), "missing.pem"), TLSKeyFile: filepath.Join(t.TempDir(), "missing.key")},
	} {
		if _, err := serverTLSConfig(context.Background(), cfg, log); err == nil {
			t.Errorf("serverTLSConfig(%+v) accepted", cfg)
		}
	}
}
