package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// serve runs the server in-process on a free loopback port with an in-memory store and
// returns its base URL; it stops when the test ends.
func serve(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.DatabaseURL = MemoryURL
	return start(t, cfg)
}

func do(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// preflight is what a browser sends before a Connect-Web call with a signature header.
func preflight(origin string) http.Header {
	return http.Header{
		"Origin":                         {origin},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"authorization,connect-protocol-version,content-type"},
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	const allowed = "http://localhost:5173"
	base := serve(t, Config{Auth: AuthConfig{Schemes: "signature"}, CORSOrigins: []string{allowed, "https://*.example.com"}})
	rpc := base + "/vss.v1.VssService/GetObject"

	for _, origin := range []string{allowed, "https://wallet.example.com"} {
		res, _ := do(t, http.MethodOptions, rpc, preflight(origin))
		h := res.Header
		if res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("preflight from %s: %d, Allow-Origin %q", origin, res.StatusCode, h.Get("Access-Control-Allow-Origin"))
		}
		if got := strings.ToLower(h.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "authorization") || !strings.Contains(got, "connect-protocol-version") {
			t.Errorf("preflight Allow-Headers = %q", got)
		}
		if got := h.Get("Access-Control-Allow-Methods"); got != "POST" {
			t.Errorf("preflight Allow-Methods = %q", got)
		}
		if h.Get("Vss-Protocol-Version") != "0" {
			t.Error("the preflight answer lacks the protocol version header")
		}
	}

	res, _ := do(t, http.MethodOptions, rpc, preflight("http://evil.example"))
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("preflight from an origin not listed: Allow-Origin %q", got)
	}

	// The call itself (refused here: it carries no credentials) exposes Connect's and
	// VSS's headers to the page.
	res, _ = do(t, http.MethodPost, rpc, http.Header{"Origin": {allowed}, "Content-Type": {"application/json"}})
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Fatalf("call: %d, Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	exposed := strings.ToLower(res.Header.Get("Access-Control-Expose-Headers"))
	for _, want := range []string{"grpc-status", "vss-protocol-version"} {
		if !strings.Contains(exposed, want) {
			t.Errorf("Expose-Headers %q lacks %s", exposed, want)
		}
	}
	if res.Header.Get("Vss-Protocol-Version") != "0" {
		t.Error("the protocol version header is missing")
	}
}

func TestCORSIsOffByDefault(t *testing.T) {
	t.Parallel()
	base := serve(t, Config{Auth: AuthConfig{Schemes: "signature"}})
	res, _ := do(t, http.MethodOptions, base+"/vss.v1.VssService/GetObject", preflight("http://localhost:5173"))
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" || res.StatusCode < 400 {
		t.Fatalf("preflight without --cors-origins: %d, Allow-Origin %q", res.StatusCode, got)
	}
}

func TestCORSRefusesOriginsThatCannotMatch(t *testing.T) {
	t.Parallel()
	for _, o := range []string{"https://example.com/", "example.com", "https://example.com/app", "ftp://example.com", "https://*.*.example.com", ""} {
		if err := checkOrigin(o); err == nil {
			t.Errorf("checkOrigin(%q) accepted", o)
		}
	}
	for _, o := range []string{"*", "https://example.com", "http://127.0.0.1:8080", "https://*.example.com"} {
		if err := checkOrigin(o); err != nil {
			t.Errorf("checkOrigin(%q): %v", o, err)
		}
	}
	err := Run(context.Background(), Config{Listen: "127.0.0.1:0", DatabaseURL: MemoryURL, CORSOrigins: []string{"https://example.com/"}}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "CORS origin") {
		t.Fatalf("Run with a bad origin: %v", err)
	}
}

func TestExplorerIsServedOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	on := serve(t, Config{Auth: AuthConfig{Schemes: "signature"}, Explorer: true})
	res, body := do(t, http.MethodGet, on+"/explorer/", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "<title>VSS store explorer</title>") {
		t.Fatalf("GET /explorer/ with the explorer on: %d\n%s", res.StatusCode, body)
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("the explorer is served without a Content-Security-Policy")
	}
	res, _ = do(t, http.MethodGet, on+"/healthz", nil)
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with the explorer on: %d", res.StatusCode)
	}

	off := serve(t, Config{Auth: AuthConfig{Schemes: "signature"}})
	res, body = do(t, http.MethodGet, off+"/explorer/", nil)
	if res.StatusCode != http.StatusNotFound || strings.Contains(body, "VSS store explorer") {
		t.Fatalf("GET /explorer/ with the explorer off: %d\n%s", res.StatusCode, body)
	}
}

// cspDirectives splits a Content-Security-Policy into its directives' source lists.
func cspDirectives(t *testing.T, csp string) map[string][]string {
	t.Helper()
	d := map[string][]string{}
	for _, part := range strings.Split(csp, ";") {
		fields := strings.Fields(part)
		if len(fields) == 0 {
			continue
		}
		if _, dup := d[fields[0]]; dup {
			t.Fatalf("directive %s appears twice in %q", fields[0], csp)
		}
		d[fields[0]] = fields[1:]
	}
	return d
}

// TestExplorerConnectsOnlyToAllowedServers checks what keeps the explorer's page from
// calling any server but its own and the ones the operator allows: the
// Content-Security-Policy on every explorer response and the list in config.json.
func TestExplorerConnectsOnlyToAllowedServers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		allowed []string
		want    []string // origins besides 'self'
	}{
		{"default", nil, []string{}},
		{"allow list", []string{"https://vss2.example.com", "HTTP://127.0.0.1:9000", "https://vss2.example.com:443"},
			[]string{"https://vss2.example.com", "http://127.0.0.1:9000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := serve(t, Config{Auth: AuthConfig{Schemes: "signature"}, Explorer: true, ExplorerAllowedServers: tc.allowed})
			res, page := do(t, http.MethodGet, base+"/explorer/", nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /explorer/: %d", res.StatusCode)
			}
			paths := []string{"/explorer/", "/explorer/config.json", "/explorer/no-such-file"}
			for _, m := range regexp.MustCompile(`(?:src|href)="\./(assets/[^"]+)"`).FindAllStringSubmatch(page, -1) {
				paths = append(paths, "/explorer/"+m[1])
			}
			for _, path := range paths {
				res, _ := do(t, http.MethodGet, base+path, nil)
				h := res.Header
				d := cspDirectives(t, h.Get("Content-Security-Policy"))
				want := map[string][]string{
					"default-src":               {"'none'"},
					"script-src":                {"'self'"},
					"style-src":                 {"'self'"},
					"connect-src":               append([]string{"'self'"}, tc.want...),
					"form-action":               {"'none'"},
					"base-uri":                  {"'none'"},
					"frame-ancestors":           {"'none'"},
					"require-trusted-types-for": {"'script'"},
				}
				if len(d) != len(want) {
					t.Errorf("%s: Content-Security-Policy %q, want exactly the directives %v", path, h.Get("Content-Security-Policy"), want)
				}
				for name, sources := range want {
					if !slices.Equal(d[name], sources) {
						t.Errorf("%s: %s %q, want %q", path, name, d[name], sources)
					}
				}
				if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
					t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q, Referrer-Policy %q", path,
						h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
				}
			}

			res, body := do(t, http.MethodGet, base+"/explorer/config.json", nil)
			var cfg struct {
				AllowedServers []string `json:"allowedServers"`
			}
			if err := json.Unmarshal([]byte(body), &cfg); err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("GET /explorer/config.json: %d %q: %v", res.StatusCode, body, err)
			}
			if !slices.Equal(cfg.AllowedServers, tc.want) || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("config.json %s (%s), want allowedServers %q", body, res.Header.Get("Content-Type"), tc.want)
			}
		})
	}

	for _, bad := range []string{"*", "https://vss2.example.com/", "https://*.example.com", "vss2.example.com", "https://vss2.example.com 'unsafe-inline'"} {
		err := Run(context.Background(), Config{Listen: "127.0.0.1:0", DatabaseURL: MemoryURL, Explorer: true, ExplorerAllowedServers: []string{bad}},
			slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "explorer server") {
			t.Errorf("Run with explorer server %q: %v", bad, err)
		}
	}
}
