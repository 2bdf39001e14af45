package vsstest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/govss/vss/client/vsstest"
)

// TestConfigs starts each kind of server and checks what it demands and serves.
func TestConfigs(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// An empty GetObjectRequest in the existing VSS HTTP API: the global version of the
	// empty store id, if the request is authenticated.
	call := func(t *testing.T, s *vsstest.Server) int {
		t.Helper()
		resp, err := http.Post(s.URL+"/vss/getObject", "application/octet-stream", strings.NewReader("\x12\x0eglobal_version"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	signature := vsstest.Start(t, vsstest.Config{})
	if code := call(t, signature); code != http.StatusUnauthorized || signature.LNURL != "" {
		t.Errorf("default server: status %d without credentials, LNURL %q", code, signature.LNURL)
	}
	if code, _ := get(t, signature.URL+"/auth/lnurl"); code != http.StatusNotFound {
		t.Errorf("default server serves /auth/lnurl: %d", code)
	}

	var wrapped int
	open := vsstest.Start(t, vsstest.Config{NoAuth: true, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { wrapped++; h.ServeHTTP(w, r) })
	}})
	if code := call(t, open); code != http.StatusOK || wrapped != 1 {
		t.Errorf("NoAuth server: status %d, %d requests through Wrap", code, wrapped)
	}

	lnurl := vsstest.Start(t, vsstest.Config{LNURLAuth: true})
	port := lnurl.URL[strings.LastIndex(lnurl.URL, ":"):]
	if lnurl.LNURL != lnurl.URL+"/auth/lnurl" {
		t.Errorf("LNURL = %q", lnurl.LNURL)
	}
	if code, body := get(t, lnurl.LNURL); code != http.StatusOK || !strings.HasPrefix(body, "http://localhost"+port+"/auth/lnurl/verify?tag=login&k1=") {
		t.Errorf("GET %s: %d %q", lnurl.LNURL, code, body)
	}
	if code := call(t, lnurl); code != http.StatusUnauthorized {
		t.Errorf("LNURL-auth server without credentials: %d", code)
	}
}
