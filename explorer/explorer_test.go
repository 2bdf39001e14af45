package explorer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerServesTheBuild(t *testing.T) {
	h, err := Handler(nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, string(body)
	}

	res, page := get("/explorer")
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/explorer/" {
		t.Fatalf("GET /explorer: %d at %s, want a redirect to /explorer/", res.StatusCode, res.Request.URL.Path)
	}
	if !strings.Contains(page, "<title>VSS store explorer</title>") {
		t.Fatalf("GET /explorer/ is not the explorer:\n%s", page)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("index Content-Type = %q", ct)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("index Content-Security-Policy = %q", csp)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index Cache-Control = %q", cc)
	}

	assets := regexp.MustCompile(`(?:src|href)="\./(assets/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(assets) < 2 {
		t.Fatalf("index.html references %d assets, want a script and a stylesheet", len(assets))
	}
	types := map[string]string{".js": "text/javascript", ".css": "text/css"}
	for _, m := range assets {
		res, body := get("/explorer/" + m[1])
		if res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes", m[1], res.StatusCode, len(body))
			continue
		}
		ext := m[1][strings.LastIndex(m[1], "."):]
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, types[ext]) {
			t.Errorf("%s Content-Type = %q, want %s", m[1], ct, types[ext])
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s Cache-Control = %q", m[1], cc)
		}
	}

	if res, _ := get("/explorer/no-such-file.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: %d, want 404", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/explorer/", nil)
	if res, err := srv.Client().Do(req); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /explorer/: %v %v, want 405", res.StatusCode, err)
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://vss.example.com":       "https://vss.example.com",
		"HTTPS://VSS.Example.COM":       "https://vss.example.com",
		"https://vss.example.com:443":   "https://vss.example.com",
		"http://vss.example.com:80":     "http://vss.example.com",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://[::1]:8080":             "http://[::1]:8080",
		"https://[::1]":                 "https://[::1]",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
	} {
		if got, err := Origin(in); err != nil || got != want {
			t.Errorf("Origin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "*", "vss.example.com", "//vss.example.com", "ftp://vss.example.com", "javascript:alert(1)",
		"https://vss.example.com/", "https://vss.example.com/vss", "https://vss.example.com?x", "https://vss.example.com#x",
		"https://user@vss.example.com", "https://*.example.com", "https://vss.example.com:0", "https://vss.example.com:99999",
		"https://vss.example.com:08080", "https://a;b.example.com", "https://a b.example.com", "https://vss.example.com 'unsafe-inline'",
		"https://[fe80::1%25eth0]", "https://-a.example.com", "https://",
	} {
		if got, err := Origin(in); err == nil {
			t.Errorf("Origin(%q) = %q, want an error", in, got)
		}
	}
	if _, err := Handler([]string{"https://ok.example.com", "https://bad.example.com/"}); err == nil {
		t.Error("Handler accepted a server that is not an origin")
	}
}
