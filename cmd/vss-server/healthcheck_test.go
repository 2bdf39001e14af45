package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck probes servers the way the container image's HEALTHCHECK does: the port
// from VSS_LISTEN, https when VSS_TLS_CERT_FILE is set, 0 only for a 200 from /readyz.
func TestHealthcheck(t *testing.T) {
	ready := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok\n"))
	})
	unready := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
	})
	plain := httptest.NewServer(ready)
	defer plain.Close()
	secure := httptest.NewTLSServer(ready)
	defer secure.Close()
	down := httptest.NewServer(unready)
	defer down.Close()
	port := func(s *httptest.Server) string {
		_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
		return p
	}

	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		out  string
	}{
		{"port from VSS_LISTEN", nil, map[string]string{"VSS_LISTEN": "0.0.0.0:" + port(plain)}, 0, "ok"},
		{"https with VSS_TLS_CERT_FILE", nil, map[string]string{"VSS_LISTEN": "0.0.0.0:" + port(secure), "VSS_TLS_CERT_FILE": "/etc/vss/cert.pem"}, 0, "ok"},
		{"plain http to a TLS server", nil, map[string]string{"VSS_LISTEN": "0.0.0.0:" + port(secure)}, 1, ""},
		{"not ready", nil, map[string]string{"VSS_LISTEN": "[::]:" + port(down)}, 1, "503"},
		{"an explicit URL", []string{plain.URL + "/readyz"}, nil, 0, "ok"},
		{"a path that is not there", []string{plain.URL + "/nothing"}, nil, 1, "404"},
		{"too many arguments", []string{"a", "b"}, nil, 2, "Usage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runHealthcheck(context.Background(), c.args, func(k string) string { return c.env[k] }, &stdout, &stderr)
			if code != c.code || !strings.Contains(stdout.String()+stderr.String(), c.out) {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q (want %q in them)", code, c.code, stdout.String(), stderr.String(), c.out)
			}
		})
	}
}
