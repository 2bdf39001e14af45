package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// certReloader serves a certificate and key from files and loads them again when they
// change (checked at most once a second, at a handshake) or on SIGHUP, so that a renewed
// certificate takes effect without a restart. A broken pair of files is logged and the
// previous certificate kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // modification times and sizes of the files loaded
	checked time.Time
}

// newCertReloader loads the certificate and key, failing if they do not load.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate file and a key file (--tls-cert-file, --tls-key-file)")
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// fileStamp describes the current versions of the files.
func (r *certReloader) fileStamp() string {
	var s string
	for _, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return s
}

// load reads the files. r.mu must not be held.
func (r *certReloader) load() error {
	stamp := r.fileStamp()
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	r.mu.Lock()
	r.cert, r.stamp, r.checked = &cert, stamp, time.Now()
	r.mu.Unlock()
	return nil
}

// reload loads the files again, keeping the current certificate if they do not load.
func (r *certReloader) reload(why string) {
	if err := r.load(); err != nil {
		r.log.Error("keeping the previous TLS certificate", "err", err)
		return
	}
	r.log.Info("TLS certificate loaded", "cert", r.certFile, "reason", why)
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	changed := false
	if time.Since(r.checked) >= time.Second {
		r.checked = time.Now()
		changed = r.fileStamp() != r.stamp
	}
	r.mu.Unlock()
	if changed {
		r.reload("files changed")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, nil
}

// watchSIGHUP reloads the certificate on SIGHUP until ctx ends.
func (r *certReloader) watchSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.reload("SIGHUP")
			}
		}
	}()
}

// serverTLSConfig returns the TLS configuration of the server for cfg, nil when TLS is
// off. It offers HTTP/2 and HTTP/1.1 by ALPN (http.Server adds them).
func serverTLSConfig(ctx context.Context, cfg Config, log *slog.Logger) (*tls.Config, error) {
	if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" {
		return nil, nil
	}
	r, err := newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, log)
	if err != nil {
		return nil, err
	}
	r.watchSIGHUP(ctx)
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}, nil
}
